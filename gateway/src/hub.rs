//! Who is connected and who follows what: the routing table between engine
//! events and sockets. The hub never blocks: every send is a `try_send` on
//! the connection's bounded queue, and a full queue closes that connection
//! (a client that does not read is dropped, never allowed to grow memory).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use engine::{Engine, Event, EventKind, JobId, JobStatus};
use tokio::sync::{mpsc, Notify};

use crate::metrics::Metrics;
use crate::resume::Backlogs;
use crate::wire::{rfc3339, JobView, ServerMsg};

pub type Outbound = Arc<ServerMsg>;

/// Why the server closes a connection: a WebSocket close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

pub const SLOW_CLIENT: CloseReason = CloseReason {
    code: 1008,
    reason: "slow client: outbound queue full",
};
pub const PING_TIMEOUT: CloseReason = CloseReason {
    code: 1001,
    reason: "no answer to pings",
};
pub const SHUTTING_DOWN: CloseReason = CloseReason {
    code: 1001,
    reason: "server shutting down",
};

/// What an attaching socket asks to be replayed: everything after `since`
/// (a `?since=` resume), as of `now_ms`, at most `room` messages (its queue).
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    pub since: Option<u64>,
    pub now_ms: i64,
    pub room: usize,
}

/// The hub's side of one connection.
pub struct Conn {
    pub id: u64,
    tx: mpsc::Sender<Outbound>,
    /// Set once, by whoever decides the connection must go.
    closing: OnceLock<CloseReason>,
    /// Wakes the connection's writer when `closing` is set.
    pub closed: Notify,
}

impl Conn {
    pub fn new(id: u64, tx: mpsc::Sender<Outbound>) -> Conn {
        Conn {
            id,
            tx,
            closing: OnceLock::new(),
            closed: Notify::new(),
        }
    }

    /// Queues a message; a full queue closes the connection.
    pub fn send(&self, m: Outbound, metrics: &Metrics) -> bool {
        let name = m.name();
        match self.tx.try_send(m) {
            Ok(()) => {
                metrics.msg_out(name);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.close(SLOW_CLIENT) {
                    metrics.slow_disconnects.increment(1);
                    tracing::info!(conn = self.id, "closing a client that does not read");
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the connection to close; true for the first caller.
    pub fn close(&self, why: CloseReason) -> bool {
        let first = self.closing.set(why).is_ok();
        if first {
            self.closed.notify_one();
        }
        first
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing.get().copied()
    }
}

pub struct Hub {
    /// Open connections by user id (residents get their jobs, workers their offers).
    users: DashMap<Arc<str>, Vec<Arc<Conn>>>,
    /// What each user's sockets were sent lately, for `?since=` resumes.
    pub backlogs: Backlogs,
    /// Explicit `subscribe`s, by job.
    subs: DashMap<JobId, Vec<Arc<Conn>>>,
    /// Ops watching the fleet or every job.
    pub watch: crate::watch::Watchers,
    next_id: AtomicU64,
    /// The backlogs on disk, so resumes survive a restart (set once ready).
    pub resume_log: std::sync::OnceLock<crate::resume_log::ResumeLog>,
    /// How `tracking` messages estimate `eta_s`.
    pub tracking: crate::config::TrackingConfig,
}

impl Hub {
    pub fn new(resume_window_s: u64, tracking: crate::config::TrackingConfig) -> Hub {
        Hub {
            tracking,
            users: DashMap::new(),
            backlogs: Backlogs::new(resume_window_s),
            subs: DashMap::new(),
            watch: Default::default(),
            next_id: AtomicU64::new(0),
            resume_log: std::sync::OnceLock::new(),
        }
    }

    /// Attaches a socket: replays what it missed since `resume.since` (and
    /// the worker's open offer) into its queue, then adds it to the user's
    /// sockets — under the user's backlog entry, so no message published
    /// meanwhile is skipped or sent twice. `first` runs when it is the
    /// user's only socket.
    pub fn attach_resume<R>(
        &self,
        user: &Arc<str>,
        conn: Arc<Conn>,
        resume: Resume,
        metrics: &Metrics,
        first: impl FnOnce() -> R,
    ) -> Option<R> {
        let b = self.backlogs.entry(user);
        let replay = self
            .backlogs
            .replay(&b, resume.since, resume.now_ms, resume.room);
        for m in replay.messages.into_iter().chain(replay.resumed) {
            conn.send(m, metrics);
        }
        let r = self.attach(user, conn, first);
        drop(b);
        r
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a connection; `first` runs (under the user's entry lock, so
    /// presence changes stay ordered) when it is the user's only one.
    pub fn attach<R>(
        &self,
        user: &Arc<str>,
        conn: Arc<Conn>,
        first: impl FnOnce() -> R,
    ) -> Option<R> {
        let mut e = self.users.entry(user.clone()).or_default();
        e.push(conn);
        (e.len() == 1).then(first)
    }

    /// Removes a connection; `last` runs (under the same lock) when the
    /// user has none left.
    pub fn detach<R>(&self, user: &Arc<str>, conn_id: u64, last: impl FnOnce() -> R) -> Option<R> {
        let mut out = None;
        self.users.remove_if_mut(user, |_, v| {
            v.retain(|c| c.id != conn_id);
            if v.is_empty() {
                out = Some(last());
                true
            } else {
                false
            }
        });
        out
    }

    pub fn subscribe(&self, job: JobId, conn: Arc<Conn>) {
        let mut e = self.subs.entry(job).or_default();
        if !e.iter().any(|c| c.id == conn.id) {
            e.push(conn);
        }
    }

    pub fn unsubscribe(&self, job: &JobId, conn_id: u64) {
        self.subs.remove_if_mut(job, |_, v| {
            v.retain(|c| c.id != conn_id);
            v.is_empty()
        });
    }

    pub fn connections(&self) -> usize {
        self.users.iter().map(|e| e.len()).sum()
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self, why: CloseReason) {
        for e in self.users.iter() {
            for c in e.value() {
                c.close(why);
            }
        }
    }

    /// Records the message in the user's backlog and delivers it to the
    /// user's sockets, under the backlog entry (see [`Hub::attach_resume`]).
    fn to_user(
        &self,
        user: &str,
        m: &Outbound,
        (seq, at_ms): (u64, i64),
        metrics: &Metrics,
        seen: &mut Vec<u64>,
    ) {
        let mut b = self.backlogs.entry(user);
        self.backlogs.record(&mut b, seq, at_ms, m);
        if let Some(log) = self.resume_log.get() {
            log.record(user, seq, at_ms, m);
        }
        if let Some(conns) = self.users.get(user) {
            for c in conns.iter() {
                if !seen.contains(&c.id) {
                    seen.push(c.id);
                    c.send(m.clone(), metrics);
                }
            }
        }
    }

    /// Remembers the offers open in `engine` (recovered, or caught up on a
    /// node that just joined) so that their workers get them again on
    /// connect, like offers made while this process ran.
    pub fn seed_open_offers(&self, engine: &Engine) {
        let q = engine::JobQuery {
            viewer: engine::Viewer::Ops,
            status: Some(JobStatus::Offered),
            limit: usize::MAX,
        };
        let seq = engine.last_seq();
        for job in engine.list_jobs(&q) {
            let (Some(worker), Some(expires)) = (&job.worker_id, job.offer_expires_at) else {
                continue;
            };
            let m = Arc::new(ServerMsg::Offer {
                job_id: job.id.as_str().to_string(),
                lat: job.lat,
                lng: job.lng,
                skill: job.skill.as_str().to_string(),
                description: job.description.clone(),
                distance_m: job.offer_distance_m.unwrap_or(0.0),
                expires_at: rfc3339(expires),
                seq,
            });
            let mut b = self.backlogs.entry(worker.as_str());
            self.backlogs.remember_offer(&mut b, job.id.clone(), m);
        }
    }

    /// Pushes what `events` mean to the sockets concerned, in engine order:
    /// `offer` and `offer_revoked` to the worker, and after each run of
    /// events about one job, a `job` message with its state to its resident,
    /// its subscribers and its assigned worker.
    pub fn publish(&self, engine: &Engine, events: &[Event], metrics: &Metrics) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        self.backlogs.published(first.seq, last.seq, first.at.0);
        let mut seen = Vec::new();
        let mut accepted_tracking: Option<(JobId, engine::Tracked)> = None;
        for (i, e) in events.iter().enumerate() {
            let stamp = (e.seq, e.at.0);
            match &e.kind {
                EventKind::JobOffered {
                    job_id,
                    worker_id,
                    expires_at,
                    distance_m,
                } => {
                    if let Some(job) = engine.job(job_id) {
                        let m = Arc::new(ServerMsg::Offer {
                            job_id: job_id.as_str().to_string(),
                            lat: job.lat,
                            lng: job.lng,
                            skill: job.skill.as_str().to_string(),
                            description: job.description.clone(),
                            distance_m: *distance_m,
                            expires_at: rfc3339(*expires_at),
                            seq: e.seq,
                        });
                        seen.clear();
                        self.to_user(worker_id.as_str(), &m, stamp, metrics, &mut seen);
                    }
                }
                EventKind::OfferRevoked {
                    job_id,
                    worker_id,
                    reason,
                } => {
                    let m = Arc::new(ServerMsg::OfferRevoked {
                        job_id: job_id.as_str().to_string(),
                        reason: reason.api_name().to_string(),
                        seq: e.seq,
                    });
                    seen.clear();
                    self.to_user(worker_id.as_str(), &m, stamp, metrics, &mut seen);
                }
                EventKind::JobAccepted {
                    job_id, tracked, ..
                } => {
                    if let Some(offered) = engine.offered_at(job_id) {
                        let ms = (e.at.0 - offered.0).max(0) as u64;
                        metrics.offer_accepted_after(std::time::Duration::from_millis(ms));
                    }
                    // Sent right after the `job` message that says so.
                    accepted_tracking = tracked.map(|t| (job_id.clone(), t));
                }
                // Leaving memory changes nothing a client sees.
                EventKind::JobArchived { .. } => continue,
                EventKind::WorkerTracked {
                    job_id,
                    lat,
                    lng,
                    reported_at,
                    ..
                } => {
                    let at = reported_at.unwrap_or(e.at);
                    self.tracking(engine, job_id, (*lat, *lng, at), stamp, metrics, &mut seen);
                    continue;
                }
                // A new name shows on the job the worker holds.
                EventKind::WorkerNamed { worker_id, .. } => {
                    if let Some(id) = engine.held_job(worker_id) {
                        self.job_update(engine, &id, stamp, metrics, &mut seen);
                    }
                    continue;
                }
                EventKind::MaintenanceAlerted {
                    schedule_id,
                    alert,
                    due_at,
                } => {
                    self.maintenance_alert(engine, schedule_id, *alert, *due_at, stamp, metrics);
                    continue;
                }
                _ => {}
            }
            let Some(id) = e.kind.job_id() else { continue };
            // (A notification raised by this event does not end its run,
            // nor does the position sent on acceptance, which follows the
            // `job` message that says the job was accepted.)
            let run_continues = events[i + 1..]
                .iter()
                .find(|n| {
                    !matches!(
                        n.kind,
                        EventKind::NotificationQueued { .. } | EventKind::WorkerTracked { .. }
                    )
                })
                .is_some_and(|n| n.kind.job_id() == Some(id));
            if !run_continues {
                self.job_update(engine, id, stamp, metrics, &mut seen);
                // The worker's position at acceptance, with the same `seq`.
                if let Some((job, t)) = accepted_tracking.take_if(|(j, _)| j == id) {
                    let at = (t.lat, t.lng, t.reported_at);
                    self.tracking(engine, &job, at, stamp, metrics, &mut seen);
                }
            }
        }
        if let Some(log) = self.resume_log.get() {
            log.published(last.seq, last.at.0);
        }
    }

    /// Where the worker on the way to `job_id` is: to its resident (and
    /// their backlog, for resumes) and the job's subscribers, nobody else.
    fn tracking(
        &self,
        engine: &Engine,
        job_id: &JobId,
        (lat, lng, at): (f64, f64, engine::Millis),
        stamp: (u64, i64),
        metrics: &Metrics,
        seen: &mut Vec<u64>,
    ) {
        let Some((resident, job_lat, job_lng)) = engine.job_place(job_id) else {
            return;
        };
        let m = Arc::new(ServerMsg::Tracking {
            job_id: job_id.as_str().to_owned(),
            lat,
            lng,
            at: rfc3339(at),
            eta_s: self.eta_s((lat, lng), (job_lat, job_lng)),
            seq: stamp.0,
        });
        seen.clear();
        self.to_user(resident.as_str(), &m, stamp, metrics, seen);
        if let Some(subs) = self.subs.get(job_id) {
            for c in subs.iter() {
                if !seen.contains(&c.id) {
                    seen.push(c.id);
                    c.send(m.clone(), metrics);
                }
            }
        }
    }

    /// Seconds from `from` to `to` at the configured speed, rounded up.
    pub fn eta_s(&self, from: (f64, f64), to: (f64, f64)) -> u64 {
        let ll = |(lat, lng)| engine::geo::LatLng { lat, lng };
        self.tracking.eta_s(ll(from).distance_m(ll(to)))
    }

    /// A due/overdue alert to the property's owner and the assigned worker.
    fn maintenance_alert(
        &self,
        engine: &Engine,
        schedule_id: &str,
        alert: engine::maintenance::AlertKind,
        due_at: engine::Millis,
        stamp: (u64, i64),
        metrics: &Metrics,
    ) {
        let Some(s) = engine.schedule(schedule_id) else {
            return;
        };
        let m = Arc::new(ServerMsg::Maintenance {
            event: alert.event_name().to_owned(),
            schedule_id: s.id.clone(),
            property_id: s.property_id.clone(),
            title: s.title.clone(),
            due_at: rfc3339(due_at),
            seq: stamp.0,
        });
        let mut seen = Vec::new();
        if let Some(p) = engine.property(&s.property_id) {
            self.to_user(p.owner_id.as_str(), &m, stamp, metrics, &mut seen);
        }
        if let Some(w) = &s.assigned_to {
            self.to_user(w.as_str(), &m, stamp, metrics, &mut seen);
        }
    }

    fn job_update(
        &self,
        engine: &Engine,
        id: &JobId,
        stamp: (u64, i64),
        metrics: &Metrics,
        seen: &mut Vec<u64>,
    ) {
        let Some(job) = engine.job(id) else { return };
        let m = Arc::new(ServerMsg::Job {
            job: Box::new(JobView::from(&job)),
            seq: stamp.0,
        });
        seen.clear();
        self.to_user(job.resident_id.as_str(), &m, stamp, metrics, seen);
        if let Some(w) = &job.worker_id {
            let assigned = match job.status {
                JobStatus::Accepted | JobStatus::Arrived | JobStatus::Completed => true,
                JobStatus::Cancelled => job.accepted_at.is_some(),
                JobStatus::Searching | JobStatus::Offered | JobStatus::Unmatched => false,
            };
            if assigned {
                self.to_user(w.as_str(), &m, stamp, metrics, seen);
            }
        }
        if let Some(subs) = self.subs.get(id) {
            for c in subs.iter() {
                if !seen.contains(&c.id) {
                    seen.push(c.id);
                    c.send(m.clone(), metrics);
                }
            }
        }
        for c in self.watch.job_watchers() {
            if !seen.contains(&c.id) {
                seen.push(c.id);
                c.send(m.clone(), metrics);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_detach_report_first_and_last() {
        let hub = Hub::new(300, Default::default());
        let u: Arc<str> = "w1".into();
        let (tx, _rx) = mpsc::channel(1);
        let a = Arc::new(Conn::new(hub.next_id(), tx.clone()));
        let b = Arc::new(Conn::new(hub.next_id(), tx));
        assert_eq!(hub.attach(&u, a.clone(), || 1), Some(1));
        assert_eq!(hub.attach(&u, b.clone(), || 2), None);
        assert_eq!(hub.detach(&u, a.id, || 3), None);
        assert_eq!(hub.detach(&u, b.id, || 4), Some(4));
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn a_full_queue_closes_the_connection() {
        let metrics = Metrics::install();
        let (tx, _rx) = mpsc::channel(2);
        let c = Conn::new(1, tx);
        assert!(c.send(Arc::new(ServerMsg::Pong), &metrics));
        assert!(c.send(Arc::new(ServerMsg::Pong), &metrics));
        assert!(!c.send(Arc::new(ServerMsg::Pong), &metrics));
        assert_eq!(c.close_reason(), Some(SLOW_CLIENT));
        // Only the first reason sticks.
        assert!(!c.close(SHUTTING_DOWN));
        assert_eq!(c.close_reason(), Some(SLOW_CLIENT));
    }
}
