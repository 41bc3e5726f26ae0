//! The embedded backend: the sled store on this machine. A command is
//! applied to the engine at once; the engine pushes its events, in `seq`
//! order and under the lock that assigned it, into the log writer
//! (persistence's `LogSink`); the caller then waits until every event its
//! answer rests on is fsynced. The log writer hands each group commit's
//! events, in that same order, to the publisher (sockets and metrics).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::{Applied, Engine, Holders, Op, WorkerId, LOCAL_NODE};
use persistence::{Account, SledStore, Snapshotter, StoreError, StoreOptions};
use tokio::sync::oneshot;

use super::{apply_timed, ExecError};
use crate::app::AppState;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

pub struct Embedded {
    store: Arc<SledStore>,
    /// Presence holders (every connected worker is held by this node);
    /// only presence commands take it.
    holders: Mutex<Holders>,
    snapshotter: Mutex<Option<Snapshotter>>,
    engine: Arc<Engine>,
    /// What recovery changed itself, until the hub takes it.
    recovered: Mutex<Vec<engine::Event>>,
}

impl Embedded {
    /// Opens the store in `data_dir` and recovers the engine.
    pub async fn open(
        cfg: &Config,
        now: engine::Millis,
    ) -> Result<(Embedded, Arc<Engine>), super::OpenError> {
        let started = Instant::now();
        let dir = cfg.storage.data_dir.clone();
        let engine_cfg = cfg.engine();
        let opts = StoreOptions {
            snapshot_every_events: cfg.storage.snapshot_every_events,
            snapshot_every: Duration::from_secs(cfg.storage.snapshot_every_s),
            keep_snapshots: cfg.storage.keep_snapshots,
            ..StoreOptions::default()
        };
        let (store, engine, report) =
            tokio::task::spawn_blocking(move || SledStore::open(&dir, engine_cfg, opts, now))
                .await??;
        tracing::info!(
            snapshot_seq = ?report.snapshot_seq,
            replayed = report.replayed,
            dropped = report.dropped,
            requeued = report.requeued.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "recovered; ready"
        );
        let engine = Arc::new(engine);
        let b = Embedded {
            recovered: Mutex::new(report.requeued),
            store: Arc::new(store),
            holders: Mutex::new(Holders::default()),
            snapshotter: Mutex::new(None),
            engine: engine.clone(),
        };
        Ok((b, engine))
    }

    /// The publisher (the log's order is the one order) and the snapshotter.
    pub fn take_recovered(&self) -> Vec<engine::Event> {
        std::mem::take(&mut *self.recovered.lock().expect("recovered"))
    }

    pub fn start(&self, publish: super::Publisher, engine: Arc<Engine>) {
        self.store.on_durable(Box::new(move |events| {
            let _ = publish.send(events);
        }));
        let s = Snapshotter::start(self.store.clone(), engine, Duration::from_secs(1));
        *self.snapshotter.lock().expect("snapshotter") = Some(s);
    }

    pub async fn submit(
        &self,
        app: &AppState,
        engine: &Engine,
        op: Op,
    ) -> Result<Applied, ExecError> {
        // What the answer rests on: a command that changed something reports
        // its own events (and, the log being in order, all before them); one
        // that changed nothing — a duplicate, a refusal — reports state that
        // other commands made, so everything applied so far. Soft state and
        // presence without events report nothing.
        let reports_state = !matches!(
            op,
            Op::Positions(_)
                | Op::Tick
                | Op::Connected { .. }
                | Op::Disconnected { .. }
                | Op::NodeDown { .. }
        );
        let result = if matches!(
            op,
            Op::Connected { .. } | Op::Disconnected { .. } | Op::NodeDown { .. }
        ) {
            let mut holders = self.holders.lock().expect("holders");
            apply_timed(op, engine, app.clock.now(), &mut holders, &app.metrics)
        } else {
            apply_timed(
                op,
                engine,
                app.clock.now(),
                &mut Holders::default(),
                &app.metrics,
            )
        };
        let own = result
            .as_ref()
            .ok()
            .and_then(|a| a.events.last())
            .map(|e| e.seq);
        let target = match own {
            Some(seq) => seq,
            None if reports_state => engine.last_seq(),
            None => 0,
        };
        self.durable_through(target, &app.metrics)
            .await
            .map_err(ExecError::Api)?;
        result.map_err(ExecError::Engine)
    }

    pub async fn connected(
        &self,
        app: &AppState,
        engine: &Engine,
        w: &WorkerId,
    ) -> Result<(), ApiError> {
        let op = Op::Connected {
            worker: w.clone(),
            node: LOCAL_NODE.into(),
        };
        self.submit(app, engine, op)
            .await
            .map(|_| ())
            .map_err(ApiError::from)
    }

    pub async fn disconnected(&self, app: &AppState, engine: &Engine, w: &WorkerId) {
        let op = Op::Disconnected {
            worker: w.clone(),
            node: LOCAL_NODE.into(),
        };
        if let Err(e) = self.submit(app, engine, op).await {
            tracing::warn!(error = %ApiError::from(e), "presence not logged");
        }
    }

    pub async fn durable_through(&self, seq: u64, metrics: &Metrics) -> Result<(), ApiError> {
        if seq <= self.store.durable_seq() {
            return Ok(());
        }
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        self.store.durable_through(
            seq,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        let r = rx.await;
        metrics
            .append_latency
            .record(started.elapsed().as_secs_f64());
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ApiError::Unavailable("storage closed".into())),
        }
    }

    pub async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.store.create_account_with(
            a,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn update_account(&self, a: Account) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.store.update_account_with(
            a,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub fn archive(&self) -> &persistence::Archive {
        self.store.archive()
    }

    /// Runs `f` on the outbox off the async threads (redb commits fsync).
    pub async fn outbox<R: Send + 'static>(
        &self,
        f: impl FnOnce(&persistence::Outbox) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.outbox()))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    pub fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.store.account(id)
    }

    pub fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        self.store.account_by_email(email)
    }

    /// The final snapshot, then the log writer flushes and stops.
    pub async fn close(&self) {
        let snapshotter = self.snapshotter.lock().expect("snapshotter").take();
        let store = self.store.clone();
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            match snapshotter {
                Some(s) => s.stop(),
                None => {
                    let _ = store.snapshot(&engine);
                }
            }
            store.close();
        })
        .await;
    }
}
