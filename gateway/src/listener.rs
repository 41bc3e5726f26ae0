//! Accepting connections, bounded: at most `max_connections` open at once
//! and `max_connections_per_ip` from one address (HTTP and WebSocket alike:
//! the slot travels with the socket into the WebSocket), a connection that
//! has not sent complete request headers within `header_timeout_s` is
//! dropped, an idle keep-alive connection after `idle_timeout_s`, and on
//! shutdown every connection without a request in flight goes at once.
//!
//! hyper's own `header_read_timeout` restarts on every idle keep-alive wait
//! (closing idle connections after the header timeout, not the idle one),
//! so both deadlines are kept here: the socket wrapper notes when the first
//! byte of a request head arrives, the service wrapper when the head was
//! complete and when the answer left, and a watchdog per connection acts on
//! those times.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use dashmap::DashMap;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_service::Service;

use crate::metrics::Metrics;

/// How often a connection's watchdog looks at its deadlines.
const WATCH_EVERY: Duration = Duration::from_millis(500);
const NONE: u64 = u64::MAX;

/// The limits a listener enforces.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Why a connection was refused or dropped (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    MaxConnections,
    MaxPerIp,
}

/// Open connections, in total and by peer address.
pub struct Slots {
    open: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
    /// `dispatchd_connections_open`.
    gauge: metrics::Gauge,
}

/// One open connection's place; given back when the socket closes.
pub struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    pub fn new(gauge: metrics::Gauge) -> Slots {
        Slots {
            open: AtomicUsize::new(0),
            per_ip: DashMap::new(),
            gauge,
        }
    }

    pub fn take(self: &Arc<Self>, ip: IpAddr, limits: &ConnLimits) -> Result<Slot, Refused> {
        let mut n = self.per_ip.entry(ip).or_insert(0);
        if *n >= limits.max_per_ip {
            return Err(Refused::MaxPerIp);
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::MaxConnections);
        }
        *n += 1;
        self.gauge.increment(1.0);
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open.fetch_sub(1, Ordering::AcqRel);
        self.slots.gauge.decrement(1.0);
        // Remove the address once its last connection is gone, so the map
        // holds only addresses with open connections.
        self.slots.per_ip.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

/// What the watchdog knows of one connection, in ms since it was accepted.
struct Activity {
    born: Instant,
    /// First byte of a request head not yet complete (NONE: none pending).
    head_started: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// When the last answer left (0: none yet, the connection is new).
    idle_since: AtomicU64,
    served: AtomicU64,
    /// Answered 101: the socket is a WebSocket now.
    upgraded: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            born: Instant::now(),
            head_started: AtomicU64::new(NONE),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            served: AtomicU64::new(0),
            upgraded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// When this connection must go if nothing changes, and why.
    fn deadline(&self, limits: &ConnLimits) -> Option<(u64, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let header = limits.header_timeout.as_millis() as u64;
        let started = self.head_started.load(Ordering::Acquire);
        if started != NONE {
            return Some((started.saturating_add(header), "header"));
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        if self.served.load(Ordering::Acquire) == 0 {
            // A new connection owes us its first request's headers.
            Some((header, "header"))
        } else {
            let idle = limits.idle_timeout.as_millis() as u64;
            Some((idle_since.saturating_add(idle), "idle"))
        }
    }
}

/// The socket as hyper (and later the WebSocket) sees it: notes request
/// bytes for the watchdog and holds the connection's slot until closed.
pub struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let a = &self.activity;
            // Only the first byte of a head between requests matters (and
            // nothing once the socket is a WebSocket): no clock read per frame.
            if a.head_started.load(Ordering::Relaxed) == NONE
                && a.in_flight.load(Ordering::Relaxed) == 0
                && !a.upgraded.load(Ordering::Relaxed)
            {
                let now = a.now_ms();
                let _ =
                    a.head_started
                        .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Marks a request answered (or abandoned) when dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Release);
        a.served.fetch_add(1, Ordering::AcqRel);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` until `stop` turns true; returns when
/// every HTTP connection has ended (WebSockets are closed by the hub).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots::new(metrics.connections_open.clone()));
    let mut conns = JoinSet::new();
    let conn_stop = stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors or a peer that reset before
                        // we took it: wait a little rather than spin.
                        tracing::debug!(error = %e, "accept failed");
                        metrics.conn_refused("accept_error");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let slot = match slots.take(peer.ip(), &limits) {
                    Ok(s) => s,
                    Err(why) => {
                        metrics.conn_refused(match why {
                            Refused::MaxConnections => "max_connections",
                            Refused::MaxPerIp => "max_connections_per_ip",
                        });
                        drop(tcp);
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                conns.spawn(connection(
                    tcp,
                    peer,
                    slot,
                    router.clone(),
                    limits.clone(),
                    metrics.clone(),
                    conn_stop.clone(),
                ));
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = Watched {
        io: tcp,
        activity: activity.clone(),
        _slot: slot,
    };
    let svc_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let a = svc_activity.clone();
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.head_started.store(NONE, Ordering::Release);
        let guard = InFlight(a);
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            let r = router.call(req).await;
            if let Ok(resp) = &r {
                if resp.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
                    guard.0.upgraded.store(true, Ordering::Release);
                }
            }
            drop(guard);
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut watch = tokio::time::interval(WATCH_EVERY);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                if activity.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                conn.as_mut().graceful_shutdown();
            }
            _ = watch.tick() => {
                if stopping {
                    if activity.in_flight.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    continue;
                }
                if let Some((at, why)) = activity.deadline(&limits) {
                    if activity.now_ms() >= at {
                        metrics.conn_timed_out(why);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            max_connections: 3,
            max_per_ip: 2,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn slots_cap_total_and_per_address_and_come_back() {
        let s = Arc::new(Slots::new(metrics::Gauge::noop()));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let l = limits();
        let a1 = s.take(a, &l).unwrap();
        let a2 = s.take(a, &l).unwrap();
        assert_eq!(s.take(a, &l).err(), Some(Refused::MaxPerIp));
        let b1 = s.take(b, &l).unwrap();
        assert_eq!(s.take(b, &l).err(), Some(Refused::MaxConnections));
        assert_eq!(s.open(), 3);
        drop(a1);
        let b2 = s.take(b, &l).unwrap();
        drop((a2, b1, b2));
        assert_eq!(s.open(), 0);
        assert!(
            s.per_ip.is_empty(),
            "addresses without connections are forgotten"
        );
    }

    #[test]
    fn deadlines_follow_the_connection() {
        let l = limits();
        let a = Activity::new();
        assert_eq!(a.deadline(&l), Some((10_000, "header")));
        a.head_started.store(4_000, Ordering::Release);
        assert_eq!(a.deadline(&l), Some((14_000, "header")));
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.head_started.store(NONE, Ordering::Release);
        assert_eq!(a.deadline(&l), None);
        drop(InFlight(Arc::new(Activity::new())));
        a.idle_since.store(20_000, Ordering::Release);
        a.served.store(1, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(a.deadline(&l), Some((80_000, "idle")));
        a.head_started.store(70_000, Ordering::Release);
        assert_eq!(a.deadline(&l), Some((80_000, "header")));
    }
}
