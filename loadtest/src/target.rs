//! The server under test: one the generator starts itself (`--server-bin`,
//! on a free loopback port with a fresh data directory, stopped at the end)
//! or one already running (`--url`, `--server-pid`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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

/// How a started node is started (again, after a kill).
#[derive(Debug, Clone)]
struct Spec {
    bin: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Spec {
    fn spawn(&self) -> anyhow::Result<Child> {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(&self.dir).stdout(Stdio::null()).stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("server.log"))?,
        );
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.spawn()
            .with_context(|| format!("starting {}", self.bin.display()))
    }
}

/// The server under test: one node, or several behind one Redis.
pub struct Target {
    pub nodes: Vec<Node>,
    /// The started nodes' processes (index = node), shared with [`Restarter`]s.
    children: Arc<Mutex<Vec<Option<Child>>>>,
    specs: Arc<Vec<Spec>>,
    dir: Option<PathBuf>,
}

/// Kills a started node with SIGKILL and starts it again on the same port
/// and data directory (the chaos mode).
#[derive(Clone)]
pub struct Restarter {
    nodes: Vec<Node>,
    children: Arc<Mutex<Vec<Option<Child>>>>,
    specs: Arc<Vec<Spec>>,
}

impl Restarter {
    pub fn nodes(&self) -> usize {
        self.specs.len()
    }

    /// The nodes' current processes.
    pub fn pids(&self) -> Vec<u32> {
        let c = self.children.lock().expect("children");
        c.iter().flatten().map(|c| c.id()).collect()
    }

    /// `kill -9` node `k`, start it again and wait until it is ready;
    /// returns the time from the kill to ready.
    pub async fn kill_and_restart(
        &self,
        k: usize,
        http: &reqwest::Client,
    ) -> anyhow::Result<Duration> {
        let old = self.children.lock().expect("children")[k].take();
        let killed = Instant::now();
        if let Some(mut c) = old {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
        let mut child = self.specs[k].spawn()?;
        let ready = wait_ready(http, &self.nodes[k].base, Some(&mut child)).await;
        self.children.lock().expect("children")[k] = Some(child);
        ready?;
        Ok(killed.elapsed())
    }
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
            children: Arc::default(),
            specs: Arc::default(),
            dir: Some(dir.clone()),
        };
        let mut specs = Vec::new();
        for k in 0..nodes.max(1) {
            let port = free_port()?;
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let ndir = dir.join(format!("node{k}"));
            std::fs::create_dir_all(&ndir)?;
            let mut env: Vec<(String, String)> = vec![
                ("DISPATCHD_SERVER_ADDR".into(), addr.to_string()),
                (
                    "DISPATCHD_STORAGE_DATA_DIR".into(),
                    ndir.join("data").display().to_string(),
                ),
                ("DISPATCHD_AUTH_JWT_SECRET".into(), secret.into()),
                ("DISPATCHD_LOG_LEVEL".into(), "warn".into()),
                // Thousands of simulated apps share a handful of loopback
                // source addresses: lift the per-address connection cap.
                (
                    "DISPATCHD_SERVER_MAX_CONNECTIONS_PER_IP".into(),
                    "1000000".into(),
                ),
            ];
            env.extend(extra.iter().cloned());
            let spec = Spec {
                bin: bin.clone(),
                dir: ndir,
                env,
            };
            let mut child = spec.spawn()?;
            let base = format!("http://{addr}");
            wait_ready(http, &base, Some(&mut child)).await?;
            t.nodes.push(Node {
                base,
                addr,
                pid: Some(child.id()),
            });
            t.children.lock().expect("children").push(Some(child));
            specs.push(spec);
        }
        t.specs = Arc::new(specs);
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
            children: Arc::default(),
            specs: Arc::default(),
            dir: None,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.pid).collect()
    }

    /// Started nodes can be killed and restarted; running ones (`--url`) cannot.
    pub fn restarter(&self) -> Option<Restarter> {
        (!self.specs.is_empty()).then(|| Restarter {
            nodes: self.nodes.clone(),
            children: self.children.clone(),
            specs: self.specs.clone(),
        })
    }

    /// SIGTERM every started node and wait; true when all exited 0.
    pub fn stop(&mut self) -> Option<bool> {
        let children: Vec<Child> = {
            let mut c = self.children.lock().expect("children");
            c.drain(..).flatten().collect()
        };
        if children.is_empty() {
            return None;
        }
        let mut all = true;
        for mut c in children {
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
        let children: Vec<Child> = match self.children.lock() {
            Ok(mut c) => c.drain(..).flatten().collect(),
            Err(_) => Vec::new(),
        };
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
