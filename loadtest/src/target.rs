//! The server under test: one the generator starts itself (`--server-bin`,
//! on a free loopback port with a fresh data directory, stopped at the end)
//! or one already running (`--url`, `--server-pid`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::net::parse_base;

/// One dispatchd node under test.
#[derive(Debug, Clone)]
pub struct Node {
    pub base: String,
    pub addr: SocketAddr,
    pub pid: Option<u32>,
}

/// The server under test: one node, or several behind one Redis.
pub struct Target {
    pub nodes: Vec<Node>,
    children: Vec<Child>,
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
    /// Starts `nodes` copies of `bin` with `secret` and extra `DISPATCHD_*`
    /// settings (several nodes need `DISPATCHD_REDIS_URL` among them).
    pub async fn spawn(
        bin: &Path,
        secret: &str,
        extra: &[(String, String)],
        http: &reqwest::Client,
        nodes: usize,
    ) -> anyhow::Result<Target> {
        // The server runs in its own directory: resolve a relative path first.
        let bin = if bin.components().count() > 1 {
            bin.canonicalize()
                .with_context(|| format!("no server binary at {}", bin.display()))?
        } else {
            bin.to_path_buf()
        };
        let dir = std::env::temp_dir().join(format!(
            "dispatchd-loadtest-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        let mut t = Target {
            nodes: Vec::new(),
            children: Vec::new(),
            dir: Some(dir.clone()),
        };
        for k in 0..nodes.max(1) {
            let port = free_port()?;
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let ndir = dir.join(format!("node{k}"));
            std::fs::create_dir_all(&ndir)?;
            let mut cmd = Command::new(&bin);
            cmd.current_dir(&ndir)
                .env("DISPATCHD_SERVER_ADDR", addr.to_string())
                .env("DISPATCHD_STORAGE_DATA_DIR", ndir.join("data"))
                .env("DISPATCHD_AUTH_JWT_SECRET", secret)
                .env("DISPATCHD_LOG_LEVEL", "warn")
                // Thousands of simulated apps share a handful of loopback
                // source addresses: lift the per-address connection cap.
                .env("DISPATCHD_SERVER_MAX_CONNECTIONS_PER_IP", "1000000")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(ndir.join("server.log"))?);
            for (k, v) in extra {
                cmd.env(k, v);
            }
            let mut child = cmd
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let base = format!("http://{addr}");
            wait_ready(http, &base, Some(&mut child)).await?;
            t.nodes.push(Node {
                base,
                addr,
                pid: Some(child.id()),
            });
            t.children.push(child);
        }
        Ok(t)
    }

    /// Running nodes: `urls` comma separated, `pids` in the same order.
    pub async fn external(
        urls: &str,
        pids: &[u32],
        http: &reqwest::Client,
    ) -> anyhow::Result<Target> {
        let mut nodes = Vec::new();
        for (k, url) in urls.split(',').enumerate() {
            let addr = parse_base(url.trim())?;
            let base = format!("http://{addr}");
            wait_ready(http, &base, None).await?;
            nodes.push(Node {
                base,
                addr,
                pid: pids.get(k).copied(),
            });
        }
        Ok(Target {
            nodes,
            children: Vec::new(),
            dir: None,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.pid).collect()
    }

    /// SIGTERM every started node and wait; true when all exited 0.
    pub fn stop(&mut self) -> Option<bool> {
        if self.children.is_empty() {
            return None;
        }
        let mut all = true;
        for mut c in self.children.drain(..) {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut ok = false;
            while Instant::now() < deadline {
                if let Ok(Some(st)) = c.try_wait() {
                    ok = st.success();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !ok {
                let _ = c.kill();
                let _ = c.wait();
            }
            all &= ok;
        }
        Some(all)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
