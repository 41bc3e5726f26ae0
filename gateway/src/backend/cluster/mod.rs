//! Scale-out over Redis (see ARCHITECTURE.md, "Scale-out"), one file per
//! idea: this one is the stream — commands appended to one Redis stream
//! that every node applies, in order, to its own engine (joining from the
//! shared snapshot, the position batcher, the applier, snapshots).
//! [`liveness`]: heartbeats and the timer lease; [`presence`]: which node
//! holds a worker's socket; [`accounts`]; [`archive`]: finished jobs;
//! [`retention`]: what the stream keeps (the snapshot guard and the trim);
//! [`outbox`]: notification deliveries.

mod accounts;
mod archive;
mod blobs;
mod history;
mod liveness;
mod outbox;
mod presence;
mod retention;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use engine::{Applied, Engine, EngineConfig, EngineError, Holders, Millis, Op, Snapshot, WorkerId};
use persistence::{Account, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{apply_timed, ExecError};
use crate::app::{App, AppState};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::wire::now;

const LOG: &str = "dispatchd:log";
const SNAP: &str = "dispatchd:snap";
const TIMER: &str = "dispatchd:timer";
const LEASE_MS: u64 = 3000;
/// How often the applier reports its position (`retention.rs`).
const REPORT_EVERY: Duration = Duration::from_millis(200);
/// Most positions one stream entry carries.
const POSITION_BATCH: usize = 2000;

fn node_key(node: &str) -> String {
    format!("dispatchd:node:{node}")
}
fn presence_key(w: &str) -> String {
    format!("dispatchd:presence:{w}")
}
fn acct_key(id: &str) -> String {
    format!("dispatchd:acct:{id}")
}
fn email_key(e: &str) -> String {
    format!("dispatchd:email:{e}")
}

/// One stream entry.
#[derive(Debug, Serialize, Deserialize)]
struct Cmd {
    node: String,
    /// The submitter's request number (0: nobody waits).
    req: u64,
    now: Millis,
    op: Op,
}

#[derive(Serialize, Deserialize)]
struct SnapEntry {
    id: String,
    snapshot: Snapshot,
    holders: Vec<(WorkerId, String)>,
}

type Waiter = oneshot::Sender<Result<Applied, EngineError>>;

/// A position report on its way into a batch, and who waits for it.
type Report = (WorkerId, f64, f64, oneshot::Sender<()>);

pub struct Cluster {
    pub node: String,
    pub(super) con: ConnectionManager,
    client: redis::Client,
    stale_ms: u64,
    snapshot_every: u64,
    pending: DashMap<u64, Waiter>,
    next_req: AtomicU64,
    /// Redis answered the last call of every loop.
    healthy: AtomicBool,
    /// The stream lost entries this node applied (Redis came back empty).
    diverged: AtomicBool,
    positions: mpsc::UnboundedSender<Report>,
    positions_rx: Mutex<Option<mpsc::UnboundedReceiver<Report>>>,
    /// Workers whose sockets this node holds.
    local: DashMap<WorkerId, ()>,
    holders: Mutex<Holders>,
    /// Last applied stream id.
    last_id: Mutex<String>,
    is_timer: AtomicBool,
    /// The one publisher, set when serving starts.
    publish: std::sync::OnceLock<super::Publisher>,
    /// The application's clock, set when serving starts.
    clock: std::sync::OnceLock<Arc<dyn Clock>>,
    /// `dispatchd_log_append_duration_seconds`, set when serving starts.
    append_latency: std::sync::OnceLock<metrics::Histogram>,
}

pub(super) fn redis_down(e: redis::RedisError) -> ApiError {
    tracing::warn!(error = %e, "redis call failed");
    ApiError::Unavailable("shared state (redis) unavailable; nothing was changed".into())
}

fn store_down(e: redis::RedisError) -> StoreError {
    StoreError::Io(format!("redis: {e}"))
}

fn parse_id(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('-').unwrap_or((id, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

impl Cluster {
    /// Connects, checks Redis's persistence settings, loads the shared
    /// snapshot and catches up with the stream. Returns the cluster and the
    /// engine, ready to be served.
    pub async fn connect(
        url: &str,
        cfg: EngineConfig,
        snapshot_every: u64,
    ) -> Result<(Arc<Cluster>, Engine), super::OpenError> {
        let client = redis::Client::open(url)?;
        let mcfg = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(2000)
            .set_response_timeout(Duration::from_secs(5))
            .set_connection_timeout(Duration::from_secs(2));
        let mut con = ConnectionManager::new_with_config(client.clone(), mcfg).await?;
        check_persistence(&mut con).await;
        let node = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // Hold the trim back before reading the snapshot, so that nothing
        // after it leaves the stream before this node has read it.
        retention::report_joining(&mut con, &node).await?;
        let (engine, last_id, holders) = match con.get::<_, Option<Vec<u8>>>(SNAP).await? {
            Some(bytes) => {
                let s: SnapEntry = rmp_serde::from_slice(&bytes)?;
                (
                    Engine::restore(cfg, &s.snapshot)?,
                    s.id,
                    Holders::from_entries(s.holders),
                )
            }
            None => (
                Engine::new(cfg.clone())?,
                "0-0".to_string(),
                Holders::default(),
            ),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let c = Arc::new(Cluster {
            node,
            con,
            client,
            stale_ms: engine.config().stale_after_s * 1000,
            snapshot_every,
            pending: DashMap::new(),
            next_req: AtomicU64::new(1),
            healthy: AtomicBool::new(true),
            diverged: AtomicBool::new(false),
            positions: tx,
            positions_rx: Mutex::new(Some(rx)),
            local: DashMap::new(),
            holders: Mutex::new(holders),
            last_id: Mutex::new(last_id),
            is_timer: AtomicBool::new(false),
            append_latency: std::sync::OnceLock::new(),
            clock: std::sync::OnceLock::new(),
            publish: std::sync::OnceLock::new(),
        });
        // Catch up before serving: apply everything already in the stream.
        let mut reader = c.reader().await?;
        loop {
            let n = c.read_once(&mut reader, &engine, None, 0).await?;
            if c.diverged.load(Ordering::Acquire) {
                return Err(super::OpenError::Stream(
                    "the stream was trimmed while this node joined".into(),
                ));
            }
            let at = c.last_id.lock().expect("id lock").clone();
            c.report_applied(&at).await?;
            if n == 0 {
                break;
            }
        }
        tracing::info!(node = %c.node, last_id = %c.last_id.lock().expect("id lock"), "joined the cluster");
        Ok((c, engine))
    }

    async fn reader(&self) -> redis::RedisResult<ConnectionManager> {
        let mcfg = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_max_delay(2000)
            .set_response_timeout(Duration::from_secs(10))
            .set_connection_timeout(Duration::from_secs(2));
        ConnectionManager::new_with_config(self.client.clone(), mcfg).await
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire) && !self.diverged.load(Ordering::Acquire)
    }

    /// Starts the stream applier, the position batcher, heartbeats and the timer.
    pub fn start(self: &Arc<Self>, app: AppState, engine: Arc<Engine>, publish: super::Publisher) {
        let _ = self.publish.set(publish);
        let _ = self.append_latency.set(app.metrics.append_latency.clone());
        let _ = self.clock.set(app.clock.clone());
        let c = self.clone();
        let (a, e) = (app.clone(), engine.clone());
        tokio::spawn(async move { c.apply_loop(a, e).await });
        let c = self.clone();
        let rx = self.positions_rx.lock().expect("rx lock").take();
        if let Some(rx) = rx {
            tokio::spawn(async move { c.position_loop(rx).await });
        }
        let c = self.clone();
        tokio::spawn(async move { c.heartbeat_loop().await });
        let c = self.clone();
        tokio::spawn(async move { c.lease_loop().await });
    }

    /// `now` for a command (its time is part of it: every node applies it at that time).
    fn now(&self) -> Millis {
        self.clock.get().map_or_else(now, |c| c.now())
    }

    /// Whether this node holds the timer lease (and so drives time).
    pub fn holds_timer(&self) -> bool {
        self.is_timer.load(Ordering::Acquire)
    }

    /// Appends a command and waits until this node has applied it; the
    /// receipt is what this node's engine made of it.
    pub async fn submit(&self, op: Op) -> Result<Applied, ExecError> {
        if !self.is_healthy() {
            return Err(ExecError::Api(ApiError::Unavailable(
                "shared state (redis) unavailable; nothing was changed".into(),
            )));
        }
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.insert(req, tx);
        let cmd = Cmd {
            node: self.node.clone(),
            req,
            now: self.now(),
            op,
        };
        let started = Instant::now();
        let appended = self.append(&cmd).await;
        if let Some(h) = self.append_latency.get() {
            h.record(started.elapsed().as_secs_f64());
        }
        if let Err(e) = appended {
            self.pending.remove(&req);
            self.healthy.store(false, Ordering::Release);
            return Err(ExecError::Api(redis_down(e)));
        }
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(r)) => r.map_err(ExecError::Engine),
            _ => {
                self.pending.remove(&req);
                Err(ExecError::Api(ApiError::Unavailable(
                    "command logged but not applied in time".into(),
                )))
            }
        }
    }

    async fn append(&self, cmd: &Cmd) -> redis::RedisResult<String> {
        let bytes = rmp_serde::to_vec_named(cmd).expect("commands serialise");
        let mut con = self.con.clone();
        redis::cmd("XADD")
            .arg(LOG)
            .arg("*")
            .arg("c")
            .arg(bytes)
            .query_async(&mut con)
            .await
    }

    /// A position report: batched with others into one stream entry, and
    /// answered once this node has applied that entry (so a job created
    /// after the answer sees the position, as on a single node).
    pub async fn position(&self, w: WorkerId, lat: f64, lng: f64) -> Result<(), ApiError> {
        if !self.is_healthy() {
            return Err(ApiError::Unavailable(
                "shared state (redis) unavailable".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        let _ = self.positions.send((w, lat, lng, tx));
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(ApiError::Unavailable("position not applied in time".into())),
        }
    }

    async fn position_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Report>) {
        let mut batch = Vec::new();
        let mut waiting = Vec::new();
        while let Some(first) = rx.recv().await {
            let (w, lat, lng, tx) = first;
            batch.push((w, lat, lng));
            waiting.push(tx);
            // Gather what arrives within a millisecond.
            let until = tokio::time::Instant::now() + Duration::from_millis(1);
            while batch.len() < POSITION_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some((w, lat, lng, tx))) => {
                        batch.push((w, lat, lng));
                        waiting.push(tx);
                    }
                    _ => break,
                }
            }
            let req = self.next_req.fetch_add(1, Ordering::Relaxed);
            let (tx, applied) = oneshot::channel();
            self.pending.insert(req, tx);
            let cmd = Cmd {
                node: self.node.clone(),
                req,
                now: self.now(),
                op: Op::Positions(std::mem::take(&mut batch)),
            };
            if self.append(&cmd).await.is_err() {
                self.pending.remove(&req);
                self.healthy.store(false, Ordering::Release);
                waiting.clear();
                continue;
            }
            // Answer the batch's reports once applied, without holding up
            // the next batch.
            let reports = std::mem::take(&mut waiting);
            tokio::spawn(async move {
                if let Ok(Ok(Ok(_))) = tokio::time::timeout(Duration::from_secs(10), applied).await
                {
                    for r in reports {
                        let _ = r.send(());
                    }
                }
            });
        }
    }

    /// Reads and applies one batch of entries; returns how many.
    async fn read_once(
        &self,
        con: &mut ConnectionManager,
        engine: &Engine,
        app: Option<&App>,
        block_ms: u64,
    ) -> redis::RedisResult<usize> {
        let last = self.last_id.lock().expect("id lock").clone();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(1000);
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(LOG).arg(&last);
        // The trim mark, read right after the entries (same connection, in
        // order): at most this far was trimmed before the read.
        let mut p = redis::pipe();
        p.add_command(cmd).cmd("GET").arg(retention::TRIMMED);
        let (reply, mark): (Option<redis::streams::StreamReadReply>, Option<String>) =
            p.query_async(con).await?;
        if Self::trimmed_past(mark.as_deref(), &last) {
            self.lost_the_stream(&last, mark.as_deref().unwrap_or_default());
            return Ok(0);
        }
        let Some(reply) = reply else { return Ok(0) };
        let mut n = 0;
        let mut published = Vec::new();
        let mut deliveries = Vec::new();
        let mut logs = Vec::new();
        let mut moves = Vec::new();
        let mut atts = Vec::new();
        let mut refs = Vec::new();
        let mut pay_refs = Vec::new();
        let mut answers = Vec::new();
        for key in reply.keys {
            for entry in key.ids {
                n += 1;
                let bytes: Option<Vec<u8>> = entry.get("c");
                let cmd: Option<Cmd> = bytes.and_then(|b| rmp_serde::from_slice(&b).ok());
                *self.last_id.lock().expect("id lock") = entry.id.clone();
                let Some(cmd) = cmd else {
                    tracing::error!(id = %entry.id, "undecodable stream entry skipped");
                    continue;
                };
                let result = {
                    let mut holders = self.holders.lock().expect("holders lock");
                    match app {
                        Some(app) => {
                            apply_timed(cmd.op, engine, cmd.now, &mut holders, &app.metrics)
                        }
                        None => cmd.op.apply(engine, cmd.now, &mut holders),
                    }
                };
                if let Ok(applied) = &result {
                    for e in &applied.events {
                        match &e.kind {
                            engine::EventKind::NotificationQueued { notice } => deliveries.extend(
                                engine::notify::outbox::DeliveryRecord::from_notice(notice, e.at),
                            ),
                            kind => {
                                use persistence::history::Written;
                                for w in persistence::history::written(kind, e.at) {
                                    match w {
                                        Written::Log(l) => logs.push(l.clone()),
                                        Written::Movement(m) => moves.push(m.clone()),
                                        Written::Attachment(a) => atts.push(a.clone()),
                                        Written::Ref(r) => refs.push(r),
                                        Written::PaymentRef(r) => pay_refs.push(r),
                                    }
                                }
                            }
                        }
                    }
                }
                let waiter = (cmd.node == self.node && cmd.req != 0)
                    .then(|| self.pending.remove(&cmd.req))
                    .flatten();
                match (result, waiter) {
                    (Ok(applied), Some((_, w))) => {
                        published.extend(applied.events.iter().cloned());
                        answers.push((w, Ok(applied)));
                    }
                    (Ok(applied), None) => published.extend(applied.events),
                    (Err(e), Some((_, w))) => answers.push((w, Err(e))),
                    (Err(_), None) => {}
                }
            }
        }
        // The batch's notifications are in the outbox before anyone hears
        // that their command is done.
        self.outbox_enqueue(&deliveries).await;
        self.history_put(&logs).await;
        self.history_put(&moves).await;
        self.history_put(&atts).await;
        self.history_put(&refs).await;
        self.history_put(&pay_refs).await;
        for (w, r) in answers {
            let _ = w.send(r);
        }
        if let (Some(publish), false) = (self.publish.get(), published.is_empty()) {
            let _ = publish.send(published);
        }
        Ok(n)
    }

    async fn apply_loop(self: Arc<Self>, app: AppState, engine: Arc<Engine>) {
        let mut backoff = Duration::from_millis(100);
        let mut since_snapshot = 0u64;
        let mut last_report = Instant::now();
        loop {
            let mut con = match self.reader().await {
                Ok(c) => c,
                Err(e) => {
                    self.healthy.store(false, Ordering::Release);
                    tracing::warn!(error = %e, ?backoff, "redis unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            loop {
                if self.diverged.load(Ordering::Acquire) {
                    // Not ready until restarted; nothing more is applied.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                match self.read_once(&mut con, &engine, Some(&app), 1000).await {
                    Ok(n) => {
                        backoff = Duration::from_millis(100);
                        // How far we are, a few times a second (the
                        // heartbeat says it too): the trim follows closely.
                        if n > 0 && last_report.elapsed() >= REPORT_EVERY {
                            last_report = Instant::now();
                            let at = self.last_id.lock().expect("id lock").clone();
                            let _ = self.report_applied(&at).await;
                        }
                        since_snapshot += n as u64;
                        if since_snapshot >= self.snapshot_every
                            && self.is_timer.load(Ordering::Acquire)
                        {
                            since_snapshot = 0;
                            self.snapshot(&engine).await;
                        }
                    }
                    Err(e) => {
                        self.healthy.store(false, Ordering::Release);
                        tracing::warn!(error = %e, "stream read failed; reconnecting");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        break;
                    }
                }
            }
        }
    }

    /// Writes the shared snapshot (state after the last applied entry) if
    /// it is newer than the stored one, and trims the stream as far as
    /// every live node allows (`retention.rs`). Called from the applier,
    /// between entries.
    async fn snapshot(&self, engine: &Engine) {
        let id = self.last_id.lock().expect("id lock").clone();
        let entry = SnapEntry {
            id: id.clone(),
            snapshot: engine.snapshot(),
            holders: self.holders.lock().expect("holders lock").entries(),
        };
        let bytes = rmp_serde::to_vec(&entry).expect("snapshot serialises");
        match self.write_snapshot(&id, bytes).await {
            Ok(Some(trimmed_to)) => {
                tracing::info!(%id, %trimmed_to, "cluster snapshot written; stream trimmed")
            }
            Ok(None) => tracing::info!(%id, "a newer cluster snapshot was there; kept it"),
            Err(e) => tracing::warn!(error = %e, "cluster snapshot failed"),
        }
    }
}

/// Durability needs AOF with `appendfsync always`; say so loudly otherwise.
async fn check_persistence(con: &mut ConnectionManager) {
    let get = |k: &'static str| {
        let mut con = con.clone();
        async move {
            let v: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(k)
                .query_async(&mut con)
                .await;
            v.ok().and_then(|v| v.get(1).cloned())
        }
    };
    let aof = get("appendonly").await;
    let fsync = get("appendfsync").await;
    if aof.as_deref() != Some("yes") || fsync.as_deref() != Some("always") {
        tracing::warn!(
            appendonly = ?aof,
            appendfsync = ?fsync,
            "redis is not configured for durability: set `appendonly yes` and `appendfsync always`, \
             or a redis crash can lose acknowledged jobs"
        );
    }
}
