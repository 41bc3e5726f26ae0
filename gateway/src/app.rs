//! Shared state and the one write path: a command runs on the engine, its
//! events go to the log, the caller is answered once they are durable, and
//! an ordered publisher pushes them to sockets and metrics.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use engine::{Engine, Event, Skill, Viewer, WorkerHandle, WorkerId};
use persistence::{Account, Role, SledStore, StoreError};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::auth::{Auth, User};
use crate::cluster::Cluster;
use crate::command::{ExecError, Holders, Op};
use crate::config::Config;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limits::{Budget, Limits};
use crate::metrics::Metrics;
use crate::wire::now;

/// Where commands go: the embedded log, or the cluster's Redis stream.
pub enum Backend {
    Local(Arc<SledStore>),
    Cluster(Arc<Cluster>),
}

/// What exists only once recovery has finished.
pub struct Core {
    pub engine: Arc<Engine>,
    pub backend: Backend,
}

pub struct App {
    pub cfg: Config,
    pub auth: Auth,
    pub hub: Hub,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
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
        AppState(Arc::new(App {
            auth: Auth::new(&cfg.auth),
            limits: Limits::new(&cfg.limits),
            hub: Hub::default(),
            metrics: Arc::new(metrics),
            cfg,
            core: OnceLock::new(),
            draining: AtomicBool::new(false),
            sockets: AtomicUsize::new(0),
            sockets_gone: Notify::new(),
        }))
    }
}

impl AppState {
    /// Makes the recovered engine and store live and starts the publisher.
    pub fn set_ready(&self, engine: Arc<Engine>, backend: Backend) {
        match &backend {
            Backend::Local(store) => {
                // The log's own order is the one order: the writer hands
                // each group commit's events over as they became durable.
                let (tx, rx) = mpsc::unbounded_channel();
                store.on_durable(Box::new(move |events| {
                    let _ = tx.send(events);
                }));
                tokio::spawn(publish_loop(self.clone(), engine.clone(), rx));
            }
            Backend::Cluster(c) => c.start(self.clone(), engine.clone()),
        }
        let core = Core { engine, backend };
        if self.core.set(core).is_err() {
            panic!("set_ready called twice");
        }
    }
}

impl App {
    pub fn is_ready(&self) -> bool {
        let shared_ok = match self.core.get().map(|c| &c.backend) {
            None => return false,
            Some(Backend::Local(_)) => true,
            Some(Backend::Cluster(c)) => c.is_healthy(),
        };
        shared_ok && !self.draining.load(Ordering::Acquire)
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
    /// Runs a command: on a single node, applied to the engine and its
    /// events logged (answered once durable); in a cluster, appended to the
    /// shared stream and answered once this node has applied it.
    pub async fn exec(&self, app: &App, op: Op) -> Result<(), ExecError> {
        match &self.backend {
            Backend::Local(_) => {
                // Presence on a single node goes through the hub (ws.rs), so
                // no holder bookkeeping is needed here.
                let result =
                    op.apply_timed(&self.engine, now(), &mut Holders::default(), &app.metrics);
                // Whatever the answer reports — a change, a duplicate, a
                // refusal — rests on every event applied so far.
                let seen = self.engine.last_seq();
                let committed = match result {
                    Ok(events) => self.commit(app, events).await.map_err(ExecError::Api),
                    Err(e) => Err(ExecError::Engine(e)),
                };
                self.durable_through(seen).await.map_err(ExecError::Api)?;
                committed
            }
            Backend::Cluster(c) => c.submit(op).await,
        }
    }

    /// A position report (soft state: acknowledged without waiting for a log).
    pub async fn position(
        &self,
        app: &App,
        h: &WorkerHandle,
        lat: f64,
        lng: f64,
    ) -> Result<(), ApiError> {
        app.metrics.positions.increment(1);
        match &self.backend {
            Backend::Local(_) => {
                let events = self.engine.update_position_of(h, lat, lng, now())?;
                self.commit(app, events).await
            }
            Backend::Cluster(c) => {
                // Checked before it is logged, as the engine will check it.
                engine::geo::LatLng::new(lat, lng).map_err(engine::EngineError::from)?;
                c.position(h.id().clone(), lat, lng)
            }
        }
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        match &self.backend {
            Backend::Cluster(c) => Some(c),
            Backend::Local(_) => None,
        }
    }

    pub async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Local(store) => {
                let (tx, rx) = oneshot::channel();
                store.create_account_with(
                    a,
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                );
                rx.await.map_err(|_| StoreError::Closed)?
            }
            Backend::Cluster(c) => c.create_account(&a).await,
        }
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        match &self.backend {
            Backend::Local(store) => store.account(id),
            Backend::Cluster(c) => c.account(id).await,
        }
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        match &self.backend {
            Backend::Local(store) => store.account_by_email(email),
            Backend::Cluster(c) => c.account_by_email(email).await,
        }
    }

    /// Returns once every event the engine has applied so far is durable,
    /// so that an answer read from memory never reports what a crash could
    /// still take back. (A cluster applies only what its stream holds.)
    pub async fn settled(&self) -> Result<(), ApiError> {
        self.durable_through(self.engine.last_seq()).await
    }

    async fn durable_through(&self, seq: u64) -> Result<(), ApiError> {
        let Backend::Local(store) = &self.backend else {
            return Ok(());
        };
        if seq <= store.durable_seq() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        store.durable_through(
            seq,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match rx.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ApiError::Unavailable("storage closed".into())),
        }
    }

    /// Single node: makes `events` durable; returns once they (and all
    /// before them) are fsynced. Every engine event goes through here, so
    /// the log and the publisher see all of them.
    pub async fn commit(&self, app: &App, events: Vec<Event>) -> Result<(), ApiError> {
        if events.is_empty() {
            return Ok(());
        }
        let Backend::Local(store) = &self.backend else {
            return Err(ApiError::Unavailable(
                "events outside the cluster stream".into(),
            ));
        };
        let (tx, rx) = oneshot::channel();
        let started = Instant::now();
        store.append_with(
            events,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let r = rx.await;
        app.metrics
            .append_latency
            .record(started.elapsed().as_secs_f64());
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ApiError::Unavailable("storage closed".into())),
        }
    }

    /// The engine's entry for a worker user, registering it first if this
    /// is its first appearance (its account's skills, or a minted token's).
    pub async fn ensure_worker(&self, app: &App, user: &User) -> Result<WorkerHandle, ApiError> {
        let id = WorkerId::from(&*user.id);
        if user.skills.is_none() {
            if let Some(h) = self.engine.worker_handle(&id) {
                return Ok(h);
            }
        }
        let names: Vec<String> = match &user.skills {
            Some(s) => s.clone(),
            None => self
                .account(&user.id)
                .await?
                .filter(|a| a.role == Role::Worker)
                .map(|a| a.skills.iter().map(|s| s.as_str().to_string()).collect())
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

/// Publishes durable events — in the log's order, which is engine order
/// without gaps — to sockets and metrics.
async fn publish_loop(
    app: AppState,
    engine: Arc<Engine>,
    mut rx: mpsc::UnboundedReceiver<Vec<Event>>,
) {
    while let Some(events) = rx.recv().await {
        app.metrics.events(&events);
        app.hub.publish(&engine, &events, &app.metrics);
    }
}
