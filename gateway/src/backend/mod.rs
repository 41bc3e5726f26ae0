//! The one backend seam. Handlers, sockets and timers hand a command
//! ([`engine::Op`]) to [`Backend::submit`] and get back a receipt
//! ([`engine::Applied`]: the events and, for a job command, the job as it
//! stood right after) once it is durable. Two implementations, and this is
//! the only module that knows which one runs:
//!
//! * [`embedded`] — the sled store: the command is applied to the engine at
//!   once; its events reach the log through the engine's ordered sink, and
//!   the caller waits until every event it reports on is fsynced.
//! * [`cluster`] — several nodes over one Redis stream: the command is
//!   appended to the stream and answered once this node has applied it;
//!   every node applies the stream in the same order.
//!
//! Accounts, presence, the publisher of durable events and who drives time
//! go through the same seam.

pub mod cluster;
pub mod embedded;

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::notify::outbox::{DeliveryRecord, DeliveryStatus};
use engine::{
    Applied, Engine, EngineError, Holders, Job, JobId, JobQuery, Millis, Op, Viewer, WorkerId,
};
use persistence::{Account, StoreError};

use crate::app::AppState;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Why a command changed nothing: the engine refused it, or it could not
/// be made durable / shared.
#[derive(Debug)]
pub enum ExecError {
    Engine(EngineError),
    Api(ApiError),
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> ApiError {
        match e {
            ExecError::Engine(e) => e.into(),
            ExecError::Api(e) => e,
        }
    }
}

/// Why a backend could not open (recover or join).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("engine configuration: {0}")]
    Config(#[from] engine::ConfigError),
    #[error("shared snapshot does not decode: {0}")]
    Snapshot(#[from] rmp_serde::decode::Error),
    #[error("recovery task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("shared stream: {0}")]
    Stream(String),
}

/// Where a backend hands its durable events, in order.
pub type Publisher = tokio::sync::mpsc::UnboundedSender<Vec<engine::Event>>;

/// The one publisher: durable events, in the one order the backend made
/// them durable in, to sockets (`Hub::publish`) and metrics.
async fn publish_loop(
    app: AppState,
    engine: Arc<Engine>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<engine::Event>>,
) {
    while let Some(events) = rx.recv().await {
        app.metrics.events(&events);
        app.hub.publish(&engine, &events, &app.metrics);
    }
}

/// Where commands go.
pub enum Backend {
    Embedded(embedded::Embedded),
    Cluster(Arc<cluster::Cluster>),
}

/// [`Op::apply`], timing job creation (the match) into
/// `dispatchd_match_duration_seconds`.
pub fn apply_timed(
    op: Op,
    engine: &Engine,
    now: Millis,
    holders: &mut Holders,
    metrics: &Metrics,
) -> Result<Applied, EngineError> {
    let create = matches!(op, Op::CreateJob(_));
    let started = Instant::now();
    let result = op.apply(engine, now, holders);
    if create {
        metrics
            .match_latency
            .record(started.elapsed().as_secs_f64());
    }
    result
}

impl Backend {
    /// Recovers (embedded) or joins (cluster) per `cfg`; the engine it
    /// returns is the live state, ready to serve.
    /// `now` is when recovery runs (open offers are put back at it).
    pub async fn open(cfg: &Config, now: Millis) -> Result<(Backend, Arc<Engine>), OpenError> {
        match cfg.redis.url.clone() {
            None => {
                let (b, engine) = embedded::Embedded::open(cfg, now).await?;
                Ok((Backend::Embedded(b), engine))
            }
            Some(url) => {
                let mut backoff = Duration::from_millis(200);
                loop {
                    match cluster::Cluster::connect(&url, cfg.engine(), cfg.redis.snapshot_every)
                        .await
                    {
                        Ok((c, engine)) => return Ok((Backend::Cluster(c), Arc::new(engine))),
                        Err(e) => {
                            tracing::warn!(error = %e, ?backoff, "cannot join the cluster yet; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            }
        }
    }

    /// The events recovery itself made (open offers put back to
    /// searching), once: the hub publishes them after the resume backlogs
    /// are restored.
    pub fn take_recovered(&self) -> Vec<engine::Event> {
        match self {
            Backend::Embedded(b) => b.take_recovered(),
            Backend::Cluster(_) => Vec::new(),
        }
    }

    /// Starts the one publisher of durable events, fed by the log writer
    /// (embedded) or the stream applier (cluster), and, in a cluster, the
    /// applier, heartbeats and the timer lease.
    pub fn start(&self, app: AppState, engine: Arc<Engine>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(publish_loop(app.clone(), engine.clone(), rx));
        match self {
            Backend::Embedded(b) => b.start(tx, engine),
            Backend::Cluster(c) => c.start(app, engine, tx),
        }
    }

    /// Runs a command; answers once it (and everything it reports on) is durable.
    pub async fn submit(
        &self,
        app: &AppState,
        engine: &Engine,
        op: Op,
    ) -> Result<Applied, ExecError> {
        match self {
            Backend::Embedded(b) => b.submit(app, engine, op).await,
            Backend::Cluster(c) => c.submit(op).await,
        }
    }

    /// A position report: checked, then the `Positions` command (soft
    /// state: acknowledged without a log write unless it wakes a job).
    pub async fn position(
        &self,
        app: &AppState,
        engine: &Engine,
        w: &WorkerId,
        lat: f64,
        lng: f64,
    ) -> Result<(), ApiError> {
        app.metrics.positions.increment(1);
        engine::geo::LatLng::new(lat, lng).map_err(EngineError::from)?;
        match self {
            Backend::Embedded(b) => b
                .submit(app, engine, Op::Positions(vec![(w.clone(), lat, lng)]))
                .await
                .map(|_| ())
                .map_err(ApiError::from),
            // Batched with other reports into one stream entry.
            Backend::Cluster(c) => c.position(w.clone(), lat, lng).await,
        }
    }

    /// A worker's first socket opened here. The caller orders a worker's
    /// connects and disconnects (one at a time per worker).
    pub async fn connected(
        &self,
        app: &AppState,
        engine: &Engine,
        w: &WorkerId,
    ) -> Result<(), ApiError> {
        match self {
            Backend::Embedded(b) => b.connected(app, engine, w).await,
            Backend::Cluster(c) => c.connected(w).await,
        }
    }

    /// …and its last one here closed.
    pub async fn disconnected(&self, app: &AppState, engine: &Engine, w: &WorkerId) {
        match self {
            Backend::Embedded(b) => b.disconnected(app, engine, w).await,
            Backend::Cluster(c) => c.disconnected(w).await,
        }
    }

    /// Whether this node drives engine time (offer and search deadlines).
    pub fn drives_time(&self) -> bool {
        match self {
            Backend::Embedded(_) => true,
            Backend::Cluster(c) => c.holds_timer() && c.is_healthy(),
        }
    }

    /// Whether shared state is reachable (cluster) — `/readyz`.
    pub fn is_healthy(&self) -> bool {
        match self {
            Backend::Embedded(_) => true,
            Backend::Cluster(c) => c.is_healthy(),
        }
    }

    /// Returns once every event the engine has applied up to `seq` is
    /// durable, so an answer read from memory never reports what a crash
    /// could take back. (A cluster applies only what its stream holds.)
    pub async fn durable_through(&self, seq: u64, metrics: &Metrics) -> Result<(), ApiError> {
        match self {
            Backend::Embedded(b) => b.durable_through(seq, metrics).await,
            Backend::Cluster(_) => Ok(()),
        }
    }

    /// Moves jobs that finished at or before `cutoff` out of memory into the
    /// archive (called by whoever drives time). In a cluster the jobs are
    /// written to the shared archive first, then the `Archive` command
    /// makes every node drop them; embedded, the log writer archives them
    /// from the `JobArchived` events in the same flush.
    pub async fn archive_due(
        &self,
        app: &AppState,
        engine: &Engine,
        cutoff: Millis,
    ) -> Result<usize, ExecError> {
        const BATCH: usize = 2000;
        let ids = engine.archivable(cutoff, BATCH);
        if ids.is_empty() {
            return Ok(0);
        }
        if let Backend::Cluster(c) = self {
            let jobs: Vec<Job> = ids.iter().filter_map(|id| engine.job(id)).collect();
            c.archive_put(&jobs).await.map_err(ExecError::Api)?;
        }
        let n = ids.len();
        self.submit(app, engine, Op::Archive { jobs: ids }).await?;
        Ok(n)
    }

    /// An archived job, if `viewer` may see it.
    pub async fn archived_job_for(
        &self,
        id: &JobId,
        viewer: &Viewer,
    ) -> Result<Option<Job>, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.archive().job_for(id, viewer)?),
            Backend::Cluster(c) => Ok(c.archived_job(id).await?.filter(|j| viewer.may_see(j))),
        }
    }

    /// Archived jobs for a listing, newest first.
    pub async fn archived_jobs(&self, q: &JobQuery) -> Result<Vec<Job>, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.archive().list(q)?),
            Backend::Cluster(c) => c.archived_list(q).await,
        }
    }

    /// Maintenance logs, newest first.
    pub async fn logs(&self, q: &engine::LogQuery) -> Result<Vec<engine::Log>, ApiError> {
        let keys = persistence::history::log_keys(q);
        self.history(keys.as_deref(), q.from, q.to, q.limit, |l: &engine::Log| {
            q.matches(l)
        })
        .await
    }

    /// History records (logs, movements) under any of `keys` (all when
    /// `None`), at `[from, to]`, kept by `keep`, newest first.
    pub async fn history<R: persistence::history::Record>(
        &self,
        keys: Option<&[String]>,
        from: Option<Millis>,
        to: Option<Millis>,
        limit: usize,
        keep: impl Fn(&R) -> bool,
    ) -> Result<Vec<R>, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.archive().records(keys, from, to, limit, keep)?),
            Backend::Cluster(c) => c.history(keys, from, to, limit, keep).await,
        }
    }

    /// The history record of kind `R` with this id.
    pub async fn record<R: persistence::history::Record>(
        &self,
        id: &str,
    ) -> Result<Option<R>, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.archive().record(id)?),
            Backend::Cluster(c) => c.history_get(id).await,
        }
    }

    /// Shares an attachment's bytes (at `path`, durable there) with every
    /// node: nothing to do on one node; a cluster copies them to Redis.
    pub async fn put_blob(&self, sha256: &str, path: &std::path::Path) -> Result<(), ApiError> {
        match self {
            Backend::Embedded(_) => Ok(()),
            Backend::Cluster(c) => c.blob_put(sha256, path).await,
        }
    }

    /// Writes the bytes of `sha256` that another node stored to `dest`;
    /// false when there are none to fetch.
    pub async fn fetch_blob(&self, sha256: &str, dest: &std::path::Path) -> Result<bool, ApiError> {
        match self {
            Backend::Embedded(_) => Ok(false),
            Backend::Cluster(c) => c.blob_fetch(sha256, dest).await,
        }
    }

    /// Whether this node sends the outbox's deliveries (a cluster: the
    /// holder of the timer lease, so each is sent by one node at a time).
    pub fn delivers_notifications(&self) -> bool {
        self.drives_time()
    }

    /// Takes up to `limit` deliveries due at `now`, claimed until `until`.
    pub async fn outbox_take_due(
        &self,
        now: Millis,
        until: Millis,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.outbox(move |o| o.take_due(now, until, limit)).await?),
            Backend::Cluster(c) => c.outbox_take_due(now, until, limit).await,
        }
    }

    /// Stores a delivery as it now is; `durable` when someone is answered
    /// on it (an attempt's outcome may be lost: the delivery is resent).
    pub async fn outbox_save(&self, r: DeliveryRecord, durable: bool) -> Result<(), ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.outbox(move |o| o.save(&r, durable)).await?),
            Backend::Cluster(c) => c.outbox_save(&r).await,
        }
    }

    pub async fn outbox_get(&self, id: &str) -> Result<Option<DeliveryRecord>, ApiError> {
        let id = id.to_owned();
        match self {
            Backend::Embedded(b) => Ok(b.outbox(move |o| o.get(&id)).await?),
            Backend::Cluster(c) => c.outbox_get(&id).await,
        }
    }

    pub async fn outbox_list(
        &self,
        status: Option<DeliveryStatus>,
        endpoint: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b
                .outbox(move |o| o.list(status, endpoint.as_deref(), limit))
                .await?),
            Backend::Cluster(c) => c.outbox_list(status, endpoint.as_deref(), limit).await,
        }
    }

    /// Removes delivered and failed entries that ended before `before`.
    pub async fn outbox_prune(&self, before: Millis) -> Result<usize, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.outbox(move |o| o.prune(before, 10_000)).await?),
            Backend::Cluster(c) => c.outbox_prune(before, 10_000).await,
        }
    }

    /// Deliveries still to make (the backlog gauge).
    pub async fn outbox_pending(&self) -> Result<usize, ApiError> {
        match self {
            Backend::Embedded(b) => Ok(b.outbox(|o| Ok(o.pending_len())).await?),
            Backend::Cluster(c) => c.outbox_pending().await,
        }
    }

    pub async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        match self {
            Backend::Embedded(b) => b.create_account(a).await,
            Backend::Cluster(c) => c.create_account(&a).await,
        }
    }

    pub async fn update_account(&self, a: Account) -> Result<(), StoreError> {
        match self {
            Backend::Embedded(b) => b.update_account(a).await,
            Backend::Cluster(c) => c.update_account(&a).await,
        }
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        match self {
            Backend::Embedded(b) => b.account(id),
            Backend::Cluster(c) => c.account(id).await,
        }
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        match self {
            Backend::Embedded(b) => b.account_by_email(email),
            Backend::Cluster(c) => c.account_by_email(email).await,
        }
    }

    /// Shutdown: the embedded store takes its final snapshot and closes; a
    /// cluster node stops holding the stream's trim back.
    pub async fn close(&self) {
        match self {
            Backend::Embedded(b) => b.close().await,
            Backend::Cluster(c) => c.forget_applied().await,
        }
    }
}
