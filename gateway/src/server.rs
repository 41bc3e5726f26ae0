//! Startup and the one shutdown path: bind, serve (`/healthz` answers at
//! once), recover the store, go ready, and on the shutdown signal stop
//! accepting, close sockets, drain, take the final snapshot and close the log.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::AppState;
use crate::config::{Config, DEFAULT_SECRET};
use crate::hub::SHUTTING_DOWN;
use crate::listener::ConnLimits;
use crate::metrics::Metrics;

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Open(#[from] crate::backend::OpenError),
}

pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if cfg.auth.jwt_secret == DEFAULT_SECRET {
        tracing::warn!(
            "auth.jwt_secret is the shipped default: set your own before exposing dispatchd"
        );
    }
    let addr = listener.local_addr()?;
    let app = AppState::new(cfg.clone(), Metrics::install());
    let (stop_tx, stop_rx) = watch::channel(false);
    let router = crate::routes::router(app.clone());
    let server = tokio::spawn(crate::listener::serve(
        listener,
        router,
        conn_limits(&cfg),
        app.metrics.clone(),
        stop_rx.clone(),
    ));
    tracing::info!(%addr, "listening; recovering state");

    let (backend, engine) = crate::backend::Backend::open(&cfg, app.clock.now()).await?;
    app.set_ready(engine, backend);
    let timers = tokio::spawn(crate::timers::run(app.clone(), stop_rx.clone()));
    let notifier = tokio::spawn(crate::notify::dispatch::run(app.clone(), stop_rx.clone()));

    shutdown.await;
    let grace = Duration::from_secs(cfg.server.shutdown_grace_s);
    tracing::info!("shutting down: closing sockets, draining requests");
    app.start_draining();
    let _ = stop_tx.send(true);
    app.hub.close_all(SHUTTING_DOWN);
    if !app.sockets_drained(grace).await {
        tracing::warn!("some sockets did not finish closing in time");
    }
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("in-flight requests did not finish in time"),
    }
    let _ = timers.await;
    // Deliveries in flight finish or are sent again after their claim.
    let _ = tokio::time::timeout(Duration::from_secs(2), notifier).await;
    if let Some(core) = app.core_any() {
        core.backend.close().await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The listener's limits; `max_connections` is kept below the open-files
/// limit so that accepting never fails for want of descriptors (the log,
/// snapshots and Redis need some too).
fn conn_limits(cfg: &Config) -> ConnLimits {
    const RESERVED_FDS: u64 = 256;
    let s = &cfg.server;
    let mut max = s.max_connections;
    let nofile = current_nofile();
    if nofile > 0 {
        let fit = nofile.saturating_sub(RESERVED_FDS).max(1) as usize;
        if fit < max {
            tracing::warn!(
                configured = max,
                nofile,
                used = fit,
                "server.max_connections is above the open-files limit; using less"
            );
            max = fit;
        }
    }
    ConnLimits {
        max_connections: max,
        max_per_ip: s.max_connections_per_ip,
        header_timeout: Duration::from_secs(s.header_timeout_s),
        idle_timeout: Duration::from_secs(s.idle_timeout_s),
    }
}

fn current_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain syscall on a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 0;
    }
    r.rlim_cur
}

/// Every socket is a file: lift the soft open-files limit to the hard one.
pub fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        let want = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        if r.rlim_cur < r.rlim_max && libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
            r = want;
        }
    }
    r.rlim_cur
}
