//! Shared state: configuration, auth, the hub, limits, metrics, and — once
//! recovery has finished — the [`Core`]: the engine and the one backend
//! every command goes through ([`crate::backend`]).

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use engine::{Applied, Engine, Job, JobId, JobQuery, Op, Skill, Viewer, WorkerHandle, WorkerId};
use persistence::{Account, Role, StoreError};
use tokio::sync::Notify;

use crate::auth::{Auth, User};
use crate::backend::{Backend, ExecError};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limits::{Budget, Limits};
use crate::metrics::Metrics;

/// What exists only once recovery has finished.
pub struct Core {
    pub engine: Arc<Engine>,
    pub backend: Backend,
    /// Orders one worker's connects and disconnects (a socket's presence
    /// command runs while this worker's lock is held).
    presence: DashMap<WorkerId, Arc<tokio::sync::Mutex<()>>>,
    /// Workers registered without a name whose account this process has
    /// looked for (so a minted token's worker, which has none, costs one
    /// lookup, not one per call).
    name_sought: dashmap::DashSet<WorkerId>,
}

pub struct App {
    pub cfg: Config,
    /// Where `now` comes from (tests inject a manual clock).
    pub clock: Arc<dyn Clock>,
    pub auth: Auth,
    pub hub: Hub,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    /// Attachments' bytes on disk.
    pub blobs: crate::blobs::Blobs,
    core: OnceLock<Core>,
    /// Set on SIGTERM: new work is refused with 503.
    draining: AtomicBool,
    /// Open WebSocket connections, so shutdown can wait for their close handshakes.
    sockets: AtomicUsize,
    sockets_gone: Notify,
}

/// Handed to axum with `with_state`.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    pub fn new(cfg: Config, metrics: Metrics) -> AppState {
        AppState::with_clock(cfg, metrics, Arc::new(SystemClock))
    }

    pub fn with_clock(cfg: Config, metrics: Metrics, clock: Arc<dyn Clock>) -> AppState {
        AppState(Arc::new(App {
            clock,
            auth: Auth::new(&cfg.auth),
            limits: Limits::new(&cfg.limits),
            hub: Hub::new(cfg.websocket.resume_window_s, cfg.tracking.clone()),
            metrics: Arc::new(metrics),
            blobs: crate::blobs::Blobs::new(&cfg.storage.data_dir),
            cfg,
            core: OnceLock::new(),
            draining: AtomicBool::new(false),
            sockets: AtomicUsize::new(0),
            sockets_gone: Notify::new(),
        }))
    }
}

impl AppState {
    /// Makes the recovered engine and backend live and starts the publisher.
    pub fn set_ready(&self, engine: Arc<Engine>, backend: Backend) {
        self.restore_backlogs(&engine, &backend);
        self.hub.seed_open_offers(&engine);
        backend.start(self.clone(), engine.clone());
        if let Err(e) = self.blobs.prepare() {
            tracing::error!(error = %e, "attachments directory unusable; uploads will fail");
        }
        let core = Core {
            engine,
            backend,
            presence: DashMap::new(),
            name_sought: dashmap::DashSet::new(),
        };
        if self.core.set(core).is_err() {
            panic!("set_ready called twice");
        }
    }
}

impl AppState {
    /// The resume backlogs as the last process left them (its resume log),
    /// so a client resuming across a restart gets what it missed (API.md
    /// v1.2); then the changes recovery itself made (open offers revoked)
    /// are published into them.
    fn restore_backlogs(&self, engine: &Arc<Engine>, backend: &Backend) {
        let recovered = backend.take_recovered();
        let now = self.clock.now().0;
        let window_ms = (self.cfg.websocket.resume_window_s as i64).saturating_mul(1000);
        let before_recovery = engine.last_seq() - recovered.len() as u64;
        let dir = &self.cfg.storage.data_dir;
        let _ = std::fs::create_dir_all(dir);
        let (log, loaded) = crate::resume_log::ResumeLog::open(dir, now - window_ms);
        // Whatever was published after the log's end (a machine crash
        // lost its last writes; a cluster node missed what others did while
        // it was down) is not here: resuming from before it is a gap.
        let floor = match loaded.start_after {
            Some(f) if loaded.published_through >= before_recovery => f,
            _ => before_recovery,
        };
        self.hub.backlogs.load(&loaded);
        self.hub.backlogs.start_after(floor);
        log.begin(floor, &loaded.messages, (before_recovery, now));
        let _ = self.hub.resume_log.set(log);
        self.hub.publish(engine, &recovered, &self.metrics);
    }
}

impl App {
    pub fn is_ready(&self) -> bool {
        let Some(core) = self.core.get() else {
            return false;
        };
        core.backend.is_healthy() && !self.draining.load(Ordering::Acquire)
    }

    /// The live engine and store, or 503 while recovering or draining.
    pub fn core(&self) -> Result<&Core, ApiError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(ApiError::Unavailable("shutting down".into()));
        }
        self.core.get().ok_or(ApiError::Unavailable(
            "recovering state; not ready yet".into(),
        ))
    }

    /// The core even while draining (shutdown still needs it).
    pub fn core_any(&self) -> Option<&Core> {
        self.core.get()
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn socket_opened(&self) {
        self.sockets.fetch_add(1, Ordering::AcqRel);
    }

    pub fn socket_closed(&self) {
        if self.sockets.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.sockets_gone.notify_waiters();
        }
    }

    /// Waits until every socket has closed, or `limit` passes.
    pub async fn sockets_drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let gone = self.sockets_gone.notified();
            if self.sockets.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                return self.sockets.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Spends one unit of the user's budget.
    pub fn limit(&self, budget: Budget, key: &Arc<str>, ws: bool) -> Result<(), ApiError> {
        self.limits.check(budget, key).inspect_err(|_| {
            if ws {
                self.metrics.rate_limited_ws.increment(1);
            } else {
                self.metrics.rate_limited_http.increment(1);
            }
        })
    }
}

impl Core {
    /// Runs a command through the backend; the receipt is what it did,
    /// returned once durable.
    pub async fn exec(&self, app: &AppState, op: Op) -> Result<Applied, ExecError> {
        self.backend.submit(app, &self.engine, op).await
    }

    /// A position report (soft state).
    pub async fn position(
        &self,
        app: &AppState,
        h: &WorkerHandle,
        lat: f64,
        lng: f64,
    ) -> Result<(), ApiError> {
        self.backend
            .position(app, &self.engine, h.id(), lat, lng)
            .await
    }

    /// Returns once everything the engine shows is durable: call before
    /// answering a read from memory.
    pub async fn settled(&self, app: &App) -> Result<(), ApiError> {
        self.backend
            .durable_through(self.engine.last_seq(), &app.metrics)
            .await
    }

    /// A job `viewer` may see, live or archived — what `GET /v1/jobs/{id}`
    /// answers, whatever the job's age.
    pub async fn job_for(
        &self,
        app: &App,
        id: &JobId,
        viewer: &Viewer,
    ) -> Result<Option<Job>, ApiError> {
        self.settled(app).await?;
        if let Some(j) = self.engine.job_for(id, viewer) {
            return Ok(Some(j));
        }
        self.backend.archived_job_for(id, viewer).await
    }

    /// A listing over live and archived jobs, newest first.
    pub async fn list_jobs(&self, app: &App, q: &JobQuery) -> Result<Vec<Job>, ApiError> {
        self.settled(app).await?;
        let live = self.engine.list_jobs(q);
        let archived = self.backend.archived_jobs(q).await?;
        Ok(engine::merge_history(live, archived, q.limit))
    }

    /// Runs `f` with the worker's presence lock held, so that one worker's
    /// connects and disconnects reach the backend in the order they happened.
    pub async fn with_presence<R, F: std::future::Future<Output = R>>(
        &self,
        w: &WorkerId,
        f: impl FnOnce() -> F,
    ) -> R {
        let lock = self.presence.entry(w.clone()).or_default().clone();
        let _g = lock.lock().await;
        let r = f().await;
        drop(_g);
        // Forget idle locks so the map does not grow with every worker ever seen.
        self.presence.remove_if(w, |_, l| Arc::strong_count(l) == 1);
        r
    }

    pub async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        self.backend.create_account(a).await
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.backend.account(id).await
    }

    async fn worker_account(&self, id: &str) -> Result<Option<Account>, ApiError> {
        Ok(self.account(id).await?.filter(|a| a.role == Role::Worker))
    }

    /// Stores an account's new name or skills (same id and email).
    pub async fn update_account(&self, a: Account) -> Result<(), StoreError> {
        self.backend.update_account(a).await
    }

    /// Whether `id` is an account with `role` (ids of any length are asked
    /// about safely: an impossible one is simply not).
    pub async fn is_account(&self, id: &str, role: persistence::Role) -> Result<bool, ApiError> {
        Ok(id.len() <= 128 && self.account(id).await?.is_some_and(|a| a.role == role))
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        self.backend.account_by_email(email).await
    }

    /// The engine's entry for a worker user, registering it first if this
    /// is its first appearance (its account's skills, or a minted token's).
    pub async fn ensure_worker(
        &self,
        app: &AppState,
        user: &User,
    ) -> Result<WorkerHandle, ApiError> {
        let id = WorkerId::from(&*user.id);
        if user.skills.is_none() {
            if let Some(h) = self.engine.worker_handle(&id) {
                // Registered before names existed: its account's, once.
                if !h.has_name() && self.name_sought.insert(id.clone()) {
                    if let Some(a) = self.worker_account(&user.id).await? {
                        let op = Op::NameWorker {
                            worker: id.clone(),
                            name: a.name,
                        };
                        self.exec(app, op).await?;
                    }
                }
                return Ok(h);
            }
        }
        // A minted token carries its skills; an account's worker has them stored.
        let account = match user.skills {
            Some(_) => None,
            None => self.worker_account(&user.id).await?,
        };
        let names: Vec<String> = match (&user.skills, &account) {
            (Some(s), _) => s.clone(),
            (None, Some(a)) => a.skills.iter().map(|s| s.as_str().to_string()).collect(),
            (None, None) => self
                .engine
                .worker(&id)
                .map(|w| w.skills.iter().map(|s| s.as_str().to_string()).collect())
                .unwrap_or_default(),
        };
        let skills = names
            .iter()
            .map(|s| Skill::new(s).map_err(|_| ApiError::invalid("skills", "bad skill in token")))
            .collect::<Result<Vec<_>, _>>()?;
        self.exec(
            app,
            Op::RegisterWorker {
                worker: id.clone(),
                skills,
            },
        )
        .await?;
        // The name its residents see: its account's (a minted token's
        // worker has none until `PATCH /v1/me` gives it one).
        if let Some(a) = account {
            let op = Op::NameWorker {
                worker: id.clone(),
                name: a.name,
            };
            self.exec(app, op).await?;
        }
        self.engine
            .worker_handle(&id)
            .ok_or(ApiError::NotFound("unknown worker"))
    }
}

pub fn viewer(user: &User) -> Viewer {
    match user.role {
        Role::Resident => Viewer::Resident(user.id.as_ref().into()),
        Role::Worker => Viewer::Worker(user.id.as_ref().into()),
        Role::Ops => Viewer::Ops,
    }
}
