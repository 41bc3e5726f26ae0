//! End-to-end harness: starts the real `dispatchd` binary on a free
//! loopback port with its own data directory, and talks to it as apps do —
//! HTTP with reqwest, WebSockets with tokio-tungstenite.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub mod sinks;

pub const SECRET: &str = "e2e-test-secret-0123456789";
pub const PASSWORD: &str = "Secret123";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Which backend the end-to-end tests run against: the embedded store, or
/// (`E2E_BACKEND=redis`) a one-node cluster on a private
/// redis-server. The same test code runs on both (`./scripts/test.sh`).
pub fn redis_backend() -> bool {
    std::env::var("E2E_BACKEND").is_ok_and(|b| b == "redis")
}

pub struct Server {
    pub child: Option<Child>,
    /// The private Redis of a one-node cluster (see [`redis_backend`]).
    pub redis: Option<Redis>,
    pub base: String,
    pub addr: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub http: reqwest::Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Server {
    /// Starts a server; `overrides` are `DISPATCHD_*` variables.
    pub async fn start(overrides: &[(&str, &str)]) -> Server {
        // Redis first: its port is taken before ours is picked.
        let own_redis =
            redis_backend() && !overrides.iter().any(|(k, _)| *k == "DISPATCHD_REDIS_URL");
        let redis = own_redis.then(Redis::start);
        let dir = std::env::temp_dir().join(unique("dispatchd-e2e-"));
        std::fs::create_dir_all(&dir).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env: Vec<(String, String)> = vec![
            ("DISPATCHD_SERVER_ADDR".into(), addr.clone()),
            (
                "DISPATCHD_STORAGE_DATA_DIR".into(),
                dir.join("data").display().to_string(),
            ),
            ("DISPATCHD_AUTH_JWT_SECRET".into(), SECRET.into()),
            ("DISPATCHD_AUTH_ARGON2_MEMORY_KIB".into(), "64".into()),
            ("DISPATCHD_AUTH_ARGON2_ITERATIONS".into(), "1".into()),
            (
                "DISPATCHD_LIMITS_REQUESTS_PER_MINUTE".into(),
                "100000".into(),
            ),
            ("DISPATCHD_LIMITS_AUTH_PER_MINUTE".into(), "100000".into()),
            ("DISPATCHD_LOG_LEVEL".into(), "warn".into()),
        ];
        for (k, v) in overrides {
            env.retain(|(x, _)| x != k);
            env.push((k.to_string(), v.to_string()));
        }
        if let Some(r) = &redis {
            if !env.iter().any(|(k, _)| k == "DISPATCHD_REDIS_URL") {
                env.push(("DISPATCHD_REDIS_URL".into(), r.url()));
            }
        }
        let mut s = Server {
            child: None,
            redis,
            base: format!("http://{addr}"),
            addr,
            dir,
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        s.spawn().await;
        s
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dispatchd"));
        c.current_dir(&self.dir);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    async fn spawn(&mut self) {
        let log_path = self.dir.join(format!("{}.log", unique("server-")));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = self
            .command()
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dispatchd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("dispatchd exited during startup: {st}\n{log}");
            }
            assert!(Instant::now() < deadline, "dispatchd not ready in 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGKILL: no shutdown path, no final snapshot.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// `kill -9`, then `between` on the data directory, then start again.
    pub async fn restart_with(&mut self, between: impl FnOnce(&std::path::Path)) {
        self.kill9();
        between(&self.dir.join("data"));
        self.spawn().await;
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `dispatchd token …` with this server's configuration.
    pub fn token(&self, sub: &str, role: &str, extra: &[&str]) -> String {
        let out = self
            .command()
            .args(["token", "--sub", sub, "--role", role])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn ops(&self) -> String {
        self.token("ops-1", "ops", &[])
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// A raw request: any body bytes and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, v)
    }

    /// `POST /v1/attachments` with these bytes: the status and body.
    pub async fn post_attachment(
        &self,
        token: Option<&str>,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let (st, _, v) = self
            .raw(Method::POST, "/v1/attachments", token, content_type, bytes)
            .await;
        (st, v)
    }

    /// `GET /v1/attachments/{id}` (with `If-None-Match` when given): the
    /// status, headers and bytes.
    pub async fn attachment(
        &self,
        id: &str,
        token: &str,
        if_none_match: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut r = self
            .http
            .get(format!("{}/v1/attachments/{id}", self.base))
            .bearer_auth(token);
        if let Some(e) = if_none_match {
            r = r.header("if-none-match", e);
        }
        let resp = r.send().await.expect("request");
        let st = resp.status();
        let h = resp.headers().clone();
        (st, h, resp.bytes().await.unwrap().to_vec())
    }

    /// Uploads an attachment; its id.
    pub async fn upload(&self, token: &str, content_type: &str, bytes: Vec<u8>) -> String {
        let (st, v) = self
            .post_attachment(Some(token), Some(content_type), bytes)
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"email": email, "password": password});
        self.call(Method::POST, "/v1/auth/login", None, Some(body))
            .await
    }

    /// Registers and logs in; returns (id, token).
    pub async fn user(&self, role: &str, skills: &[&str]) -> (String, String) {
        let email = format!("{}@example.com", unique("u"));
        let mut body =
            json!({"email": email, "password": PASSWORD, "name": "Test User", "role": role});
        if role == "worker" {
            body["skills"] = json!(skills);
        }
        let (st, v) = self
            .call(Method::POST, "/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let (st, v) = self.login(&email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        (id, v["token"].as_str().unwrap().to_string())
    }

    pub async fn create_job(&self, token: &str, lat: f64, lng: f64, skill: &str) -> Value {
        let (st, v) = self
            .post(
                "/v1/jobs",
                token,
                json!({"lat": lat, "lng": lng, "skill": skill, "description": "e2e"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v
    }

    pub async fn job(&self, id: &str, token: &str) -> Value {
        let (st, v) = self.get(&format!("/v1/jobs/{id}"), token).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A worker with an open socket, available, at (lat, lng).
    pub async fn worker_online(&self, skills: &[&str], lat: f64, lng: f64) -> Worker {
        let (id, token) = self.user("worker", skills).await;
        let mut ws = Ws::connect(self, &token, false).await;
        ws.request(json!({"type": "availability", "available": true}))
            .await;
        ws.request(json!({"type": "location", "lat": lat, "lng": lng}))
            .await;
        Worker { id, token, ws }
    }

    /// A job of `resident` taken through accept, arrive and complete by a
    /// new worker, who then goes unavailable (out of the next job's way).
    pub async fn completed_job(&self, resident: &str) -> (String, Worker) {
        let mut w = self.worker_online(&["plumbing"], 51.5005, -0.12).await;
        let j = self.create_job(resident, 51.5, -0.12, "plumbing").await;
        let id = j["id"].as_str().unwrap().to_string();
        w.ws.next_where("offer", |m| m["job_id"] == id.as_str())
            .await;
        for step in ["accept", "arrive", "complete"] {
            let (st, v) = self
                .post(&format!("/v1/jobs/{id}/{step}"), &w.token, json!({}))
                .await;
            assert_eq!(st, StatusCode::OK, "{step}: {v}");
        }
        w.ws.request(json!({"type": "availability", "available": false}))
            .await;
        (id, w)
    }

    pub fn assert_error(v: &Value, code: &str) {
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Worker {
    pub id: String,
    pub token: String,
    pub ws: Ws,
}

/// Plays a diligent worker until its socket is quiet for 8 s: every offer
/// is accepted, arrived at and completed at once (except the offer numbered
/// `decline_nth`, which is declined). Fails if an offer arrives while it
/// holds a job — the no-double-booking check — or on any error message.
/// Returns the jobs it saw completed.
pub async fn serve_offers(mut ws: Ws, label: usize, decline_nth: Option<usize>) -> Vec<String> {
    let mut held: Option<String> = None;
    let mut done = Vec::new();
    let mut offers = 0;
    while let Some(m) = ws.recv_within(Duration::from_secs(8)).await {
        match m["type"].as_str().unwrap() {
            "offer" => {
                let id = m["job_id"].as_str().unwrap().to_string();
                assert!(
                    held.is_none(),
                    "worker {label} offered {id} while holding {held:?}"
                );
                offers += 1;
                if decline_nth == Some(offers) {
                    ws.send(json!({"type": "decline", "job_id": id})).await;
                    continue;
                }
                held = Some(id.clone());
                for step in ["accept", "arrive", "complete"] {
                    ws.send(json!({"type": step, "job_id": id})).await;
                }
            }
            "job" => {
                let st = m["job"]["status"].as_str().unwrap();
                if (st == "completed" || st == "cancelled")
                    && held.as_deref() == m["job"]["id"].as_str()
                {
                    done.push(held.take().unwrap());
                }
            }
            "offer_revoked" if held.as_deref() == m["job_id"].as_str() => held = None,
            "error" => panic!("worker {label}: {m}"),
            _ => {}
        }
    }
    done
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Ws {
    pub inner: Stream,
    pub msgpack: bool,
    next_req: u64,
    /// Messages that arrived while `request` waited for its answer.
    pending: std::collections::VecDeque<Value>,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    pub async fn connect(srv: &Server, token: &str, msgpack: bool) -> Ws {
        let fmt = if msgpack { "&format=msgpack" } else { "" };
        let url = format!("ws://{}/v1/ws?token={token}{fmt}", srv.addr);
        let (inner, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Ws {
            inner,
            msgpack,
            next_req: 0,
            pending: Default::default(),
        }
    }

    /// A JSON socket with extra query parameters (`since=N` …).
    pub async fn connect_query(srv: &Server, token: &str, query: &str) -> Ws {
        let url = format!("ws://{}/v1/ws?token={token}&{query}", srv.addr);
        let (inner, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Ws::from_stream(inner, false)
    }

    pub fn from_stream(inner: Stream, msgpack: bool) -> Ws {
        Ws {
            inner,
            msgpack,
            next_req: 0,
            pending: Default::default(),
        }
    }

    pub async fn send(&mut self, v: Value) {
        let m = if self.msgpack {
            Message::Binary(rmp_serde::to_vec_named(&v).unwrap().into())
        } else {
            Message::Text(v.to_string().into())
        };
        self.inner.send(m).await.expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.inner.send(m).await.expect("ws send");
    }

    /// The next data message, or None if nothing comes within `d`.
    pub async fn recv_within(&mut self, d: Duration) -> Option<Value> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m);
        }
        self.read_within(d).await
    }

    async fn read_within(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let m = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()?;
            match m {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Binary(b))) => {
                    assert!(self.msgpack, "binary frame on a JSON connection");
                    return Some(rmp_serde::from_slice(&b).unwrap());
                }
                Some(Ok(Message::Close(f))) => panic!("server closed the socket: {f:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error: {e}"),
                None => panic!("socket ended"),
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.recv_within(WAIT).await.expect("a message within 10 s")
    }

    /// Skips messages until one of type `t` (for which `pred` holds).
    pub async fn next_where(&mut self, t: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self
                .recv_within(left)
                .await
                .unwrap_or_else(|| panic!("no {t} message within 10 s"));
            if m["type"] == t && pred(&m) {
                return m;
            }
        }
    }

    pub async fn next_of(&mut self, t: &str) -> Value {
        self.next_where(t, |_| true).await
    }

    /// Sends with a fresh `req_id` and waits for its ack (panics on an error).
    pub async fn request(&mut self, mut v: Value) -> Value {
        self.next_req += 1;
        let id = format!("r{}", self.next_req);
        v["req_id"] = json!(id);
        self.send(v).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.read_within(left).await.expect("an answer within 10 s");
            if m["req_id"] == json!(id) {
                assert_eq!(m["type"], "ack", "{m}");
                return m;
            }
            self.pending.push_back(m);
        }
    }

    /// Sends with a `req_id` and returns the error answered to it.
    pub async fn request_err(&mut self, mut v: Value) -> Value {
        self.next_req += 1;
        let id = json!(self.next_req);
        v["req_id"] = id.clone();
        self.send(v).await;
        loop {
            let m = self.read_within(WAIT).await.expect("an answer within 10 s");
            if m["req_id"] == id {
                assert_eq!(m["type"], "error", "{m}");
                return m;
            }
            self.pending.push_back(m);
        }
    }
}

/// Great-circle distance, metres (haversine; the engine uses chord lengths,
/// which order points the same way).
/// Lowercase hex SHA-256 (as attachments are named on disk).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small PNG whose structure reads back whole (signature, IHDR, a
/// text chunk, IEND), different per `n`.
pub fn png(n: u32) -> Vec<u8> {
    png_sized(n, 8 + 25 + 12 + 300 + 12)
}

/// A PNG of exactly `len` bytes (at least 57): the text chunk takes up
/// the rest.
pub fn png_sized(n: u32, len: usize) -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    b.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R']);
    b.extend_from_slice(&n.max(1).to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, 8, 2, 0, 0, 0]);
    b.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked)
    let pad = len - b.len() - 12 - 12;
    b.extend_from_slice(&(pad as u32).to_be_bytes());
    b.extend_from_slice(b"tEXt");
    b.extend(std::iter::repeat_n(b'x', pad));
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    b
}

pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

pub fn millis(rfc3339: &Value) -> i64 {
    let s = rfc3339.as_str().expect("a timestamp");
    let t = humantime::parse_rfc3339(s).expect("RFC 3339");
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A private redis-server (AOF, fsync always) on a free port.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Redis {
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(unique("dispatchd-redis-"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.spawn();
        r
    }

    pub fn spawn(&mut self) {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed: ./scripts/test.sh installs it");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    pub async fn exists(&self, key: &str) -> bool {
        let client = redis::Client::open(self.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap()
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
