//! The server under test: one the generator starts itself (`--server-bin`,
//! on a free loopback port with a fresh data directory, stopped at the end)
//! or one already running (`--url`, `--server-pid`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::net::parse_base;

pub struct Target {
    pub base: String,
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    child: Option<&mut Child>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(c) = child.as_deref_mut() {
            if let Some(st) = c.try_wait()? {
                bail!("dispatchd exited during startup: {st}");
            }
        }
        if Instant::now() > deadline {
            bail!("{base} not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Target {
    /// Starts `bin` with `secret` and extra `DISPATCHD_*` settings.
    pub async fn spawn(
        bin: &Path,
        secret: &str,
        extra: &[(String, String)],
        http: &reqwest::Client,
    ) -> anyhow::Result<Target> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let dir =
            std::env::temp_dir().join(format!("dispatchd-loadtest-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // The server runs in its own directory: resolve a relative path first.
        let bin = if bin.components().count() > 1 {
            bin.canonicalize()
                .with_context(|| format!("no server binary at {}", bin.display()))?
        } else {
            bin.to_path_buf()
        };
        let mut cmd = Command::new(&bin);
        cmd.current_dir(&dir)
            .env("DISPATCHD_SERVER_ADDR", addr.to_string())
            .env("DISPATCHD_STORAGE_DATA_DIR", dir.join("data"))
            .env("DISPATCHD_AUTH_JWT_SECRET", secret)
            .env("DISPATCHD_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log"))?);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let base = format!("http://{addr}");
        wait_ready(http, &base, Some(&mut child)).await?;
        Ok(Target {
            base,
            addr,
            pid: Some(child.id()),
            child: Some(child),
            dir: Some(dir),
        })
    }

    pub async fn external(
        url: &str,
        pid: Option<u32>,
        http: &reqwest::Client,
    ) -> anyhow::Result<Target> {
        let addr = parse_base(url)?;
        let base = format!("http://{addr}");
        wait_ready(http, &base, None).await?;
        Ok(Target {
            base,
            addr,
            pid,
            child: None,
            dir: None,
        })
    }

    /// SIGTERM and wait (a started server only); true when it exited 0.
    pub fn stop(&mut self) -> Option<bool> {
        let mut c = self.child.take()?;
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st.success());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        Some(false)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
