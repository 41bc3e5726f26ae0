//! Resuming after a reconnect (API.md v1.1): every `offer`, `offer_revoked`
//! and `job` message a user's sockets get carries the `seq` of the change
//! that caused it, and each user keeps a short backlog of them —
//! `[websocket] resume_window_s` long, at most [`CAP`] messages — so a
//! socket that reconnects with `?since=N` gets what it missed, in order,
//! then `resumed`. The backlog is built from the published (durable) event
//! stream, on every node of a cluster alike, so a client may resume on any
//! node. It also remembers each worker's open offer, re-sent on every
//! connect.
//!
//! The hub records a message and delivers it to the user's sockets while it
//! holds the user's backlog entry; a resuming socket is replayed and
//! attached under the same lock, so no message is skipped or repeated
//! across the boundary.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::mapref::one::RefMut;
use dashmap::DashMap;
use engine::JobId;

use crate::hub::Outbound;
use crate::wire::ServerMsg;

/// Most messages one user's backlog keeps (older ones make a resume a gap),
/// `tracking` aside…
pub const CAP: usize = 128;
/// …which count on their own: a resident following a worker gets one every
/// `[tracking] every_s` (2 s by default: 150 over a 300 s window), which
/// must not push the job messages of the same window out.
pub const TRACKING_CAP: usize = 512;

#[derive(Default)]
pub struct Backlog {
    /// (seq, event time ms, message), oldest first.
    msgs: VecDeque<(u64, i64, Outbound)>,
    /// Messages up to this seq were dropped: resuming from before it is a gap.
    lost_through: u64,
    /// The worker's open offer: its job and the `offer` message.
    open_offer: Option<(JobId, Outbound)>,
    /// How many of `msgs` are `tracking`.
    tracking: usize,
}

fn is_tracking(m: &Outbound) -> bool {
    matches!(**m, ServerMsg::Tracking { .. })
}

impl Backlog {
    fn push(&mut self, seq: u64, at_ms: i64, m: Outbound) {
        self.tracking += usize::from(is_tracking(&m));
        self.msgs.push_back((seq, at_ms, m));
    }

    fn prune(&mut self, before_ms: i64) {
        while let Some((seq, at, m)) = self.msgs.front() {
            let others = self.msgs.len() - self.tracking;
            if *at >= before_ms && others <= CAP && self.tracking <= TRACKING_CAP {
                break;
            }
            self.lost_through = self.lost_through.max(*seq);
            self.tracking -= usize::from(is_tracking(m));
            self.msgs.pop_front();
        }
    }

    fn is_idle(&self) -> bool {
        self.msgs.is_empty() && self.open_offer.is_none()
    }
}

/// What a resuming socket is sent before live messages.
pub struct Replay {
    pub messages: Vec<Outbound>,
    /// `Some` when the client asked to resume: the `resumed` message.
    pub resumed: Option<Outbound>,
}

pub struct Backlogs {
    users: DashMap<Arc<str>, Backlog, ahash::RandomState>,
    window_ms: i64,
    /// The last seq published.
    last_seq: AtomicU64,
    /// Seqs at or before this were published by an earlier process (their
    /// messages are not here).
    started_after: AtomicU64,
    /// (time ms, first seq published at or after it), about one a second:
    /// tells how old a client's `since` is.
    checkpoints: Mutex<VecDeque<(i64, u64)>>,
}

impl Backlogs {
    pub fn new(window_s: u64) -> Backlogs {
        Backlogs {
            users: DashMap::with_hasher(ahash::RandomState::new()),
            window_ms: (window_s as i64).saturating_mul(1000),
            last_seq: AtomicU64::new(0),
            started_after: AtomicU64::new(0),
            checkpoints: Mutex::new(VecDeque::new()),
        }
    }

    /// Publishing starts after `seq` (the engine's state when serving began).
    pub fn start_after(&self, seq: u64) {
        self.started_after.store(seq, Ordering::Release);
        self.last_seq.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// A batch of events starting at `first_seq`, at `at_ms`, is being published.
    pub fn published(&self, first_seq: u64, last_seq: u64, at_ms: i64) {
        let mut c = self.checkpoints.lock().expect("checkpoints");
        if c.back().is_none_or(|(t, _)| at_ms - t >= 1000) {
            c.push_back((at_ms, first_seq));
        }
        while c.front().is_some_and(|(t, _)| *t < at_ms - self.window_ms) && c.len() > 1 {
            c.pop_front();
        }
        drop(c);
        self.last_seq.fetch_max(last_seq, Ordering::AcqRel);
    }

    /// The user's backlog entry, locked (records and attaches happen under it).
    pub fn entry(&self, user: &str) -> RefMut<'_, Arc<str>, Backlog> {
        // A lookup by `&str` first: no allocation per message for a known user.
        match self.users.get_mut(user) {
            Some(e) => e,
            None => self.users.entry(Arc::from(user)).or_default(),
        }
    }

    /// Records a message for the user (call with the entry held, then deliver).
    pub fn record(&self, b: &mut Backlog, seq: u64, at_ms: i64, m: &Outbound) {
        match &**m {
            ServerMsg::Offer { job_id, .. } => {
                b.open_offer = Some((JobId::from(job_id.as_str()), m.clone()));
            }
            ServerMsg::OfferRevoked { job_id, .. }
                if b.open_offer
                    .as_ref()
                    .is_some_and(|(j, _)| j.as_str() == job_id)
                => {
                    b.open_offer = None;
                }
            ServerMsg::Job { job, .. }
                // Accepted, finished or re-offered elsewhere: no longer open here.
                if job.status != "offered"
                    && b.open_offer
                        .as_ref()
                        .is_some_and(|(j, _)| j.as_str() == job.id)
                => {
                    b.open_offer = None;
                }
            _ => {}
        }
        b.push(seq, at_ms, m.clone());
        b.prune(at_ms - self.window_ms);
    }

    /// Sets the open offer without a backlog message (seeded from the engine).
    pub fn remember_offer(&self, b: &mut Backlog, job: JobId, m: Outbound) {
        b.open_offer = Some((job, m));
    }

    /// What a connecting socket gets before live messages: the backlog after
    /// `since` (or a gap), the open offer, and `resumed` when it asked.
    pub fn replay(&self, b: &Backlog, since: Option<u64>, now_ms: i64, room: usize) -> Replay {
        let latest = self.last_seq();
        let mut messages = Vec::new();
        let mut gap = false;
        if let Some(n) = since {
            let floor = {
                let c = self.checkpoints.lock().expect("checkpoints");
                c.iter()
                    .find(|(t, _)| *t >= now_ms - self.window_ms)
                    .map(|(_, s)| *s)
            };
            gap = n < self.started_after.load(Ordering::Acquire)
                || n < b.lost_through
                || floor.is_some_and(|f| n.saturating_add(1) < f && n < latest);
            if !gap {
                messages.extend(
                    b.msgs
                        .iter()
                        .filter(|(seq, _, _)| *seq > n)
                        .map(|(_, _, m)| m.clone()),
                );
                if messages.len() + 2 > room {
                    gap = true;
                    messages.clear();
                }
            }
        }
        if let Some((_, offer)) = &b.open_offer {
            if !messages.iter().any(|m| Arc::ptr_eq(m, offer)) {
                messages.push(offer.clone());
            }
        }
        Replay {
            messages,
            resumed: since.map(|_| Arc::new(ServerMsg::Resumed { seq: latest, gap })),
        }
    }

    /// Puts back what an earlier process published (its resume log):
    /// messages in seq order, and the batches' checkpoints.
    pub fn load(&self, loaded: &crate::resume_log::Loaded) {
        for (at, through) in &loaded.batches {
            self.published(*through, *through, *at);
        }
        for (user, seq, at, msg) in &loaded.messages {
            let mut b = self.entry(user);
            // Written twice (a compaction racing a batch): kept once.
            let seen = b.msgs.back().is_some_and(|(last, _, _)| last > seq)
                || b.msgs
                    .iter()
                    .rev()
                    .take_while(|(s, _, _)| s == seq)
                    .any(|(_, _, m)| **m == *msg);
            if seen {
                continue;
            }
            self.record(&mut b, *seq, *at, &Arc::new(msg.clone()));
        }
    }

    /// Every message the backlogs hold, as (user, seq, at ms, message),
    /// in seq order (what the resume log is rewritten with).
    pub fn dump(&self) -> Vec<crate::resume_log::Message> {
        let mut out: Vec<crate::resume_log::Message> = Vec::new();
        for e in self.users.iter() {
            for (seq, at, m) in &e.value().msgs {
                out.push((e.key().to_string(), *seq, *at, (**m).clone()));
            }
        }
        out.sort_by_key(|m| m.1);
        out
    }

    /// The floor below which a resume is a gap.
    pub fn floor(&self) -> u64 {
        self.started_after.load(Ordering::Acquire)
    }

    /// Drops what is older than the window, and users with nothing left.
    pub fn sweep(&self, now_ms: i64) {
        let before = now_ms - self.window_ms;
        self.users.retain(|_, b| {
            b.prune(before);
            !b.is_idle()
        });
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revoke(job: &str, seq: u64) -> Outbound {
        Arc::new(ServerMsg::OfferRevoked {
            job_id: job.into(),
            reason: "expired".into(),
            seq,
        })
    }

    #[test]
    fn replays_after_since_detects_gaps_and_prunes() {
        let bl = Backlogs::new(300);
        bl.start_after(10);
        let u: Arc<str> = "w1".into();
        {
            let mut b = bl.entry(&u);
            for seq in 11..=20 {
                bl.record(&mut b, seq, 1_000 + seq as i64, &revoke("j", seq));
            }
        }
        bl.published(11, 20, 1_011);
        let b = bl.entry(&u);
        let r = bl.replay(&b, Some(15), 2_000, 256);
        assert_eq!(r.messages.len(), 5);
        assert!(matches!(
            &*r.resumed.unwrap(),
            ServerMsg::Resumed {
                seq: 20,
                gap: false
            }
        ));
        // Before this process started: a gap.
        let r = bl.replay(&b, Some(5), 2_000, 256);
        assert!(r.messages.is_empty());
        assert!(matches!(
            &*r.resumed.unwrap(),
            ServerMsg::Resumed { gap: true, .. }
        ));
        // Not enough room in the socket's queue: a gap, not a slow-client close.
        let r = bl.replay(&b, Some(11), 2_000, 4);
        assert!(matches!(
            &*r.resumed.unwrap(),
            ServerMsg::Resumed { gap: true, .. }
        ));
        drop(b);
        // Older than the window: pruned, and resuming from before it is a gap.
        bl.sweep(1_000 + 15 + 300_000);
        let b = bl.entry(&u);
        assert!(b.lost_through >= 14);
        let r = bl.replay(&b, Some(12), 1_000 + 15 + 300_000, 256);
        assert!(matches!(
            &*r.resumed.unwrap(),
            ServerMsg::Resumed { gap: true, .. }
        ));
        drop(b);
        bl.sweep(10_000_000);
        assert_eq!(bl.users(), 0, "idle users are forgotten");
    }

    #[test]
    fn tracking_does_not_push_job_messages_out_of_the_window() {
        let bl = Backlogs::new(300);
        let u: Arc<str> = "r1".into();
        let tracking = |seq| {
            Arc::new(ServerMsg::Tracking {
                job_id: "j".into(),
                lat: 1.0,
                lng: 2.0,
                at: "2026-01-01T00:00:00Z".into(),
                eta_s: 60,
                seq,
            })
        };
        {
            let mut b = bl.entry(&u);
            bl.record(&mut b, 1, 0, &revoke("j", 1));
            // A worker on the way for 290 s, one message a second.
            for seq in 2..=291 {
                bl.record(&mut b, seq, (seq as i64 - 1) * 1000, &tracking(seq));
            }
        }
        bl.published(1, 291, 0);
        let b = bl.entry(&u);
        assert_eq!(b.lost_through, 0, "nothing inside the window was dropped");
        let r = bl.replay(&b, Some(0), 290_000, 1024);
        assert_eq!(r.messages.len(), 291);
        drop(b);
        // Beyond the tracking cap, the oldest go (and resuming before them is a gap).
        let mut b = bl.entry(&u);
        for seq in 292..=(292 + TRACKING_CAP as u64) {
            bl.record(&mut b, seq, 290_000, &tracking(seq));
        }
        assert!(b.tracking <= TRACKING_CAP);
        assert!(b.lost_through >= 1);
    }

    #[test]
    fn the_open_offer_is_resent_until_it_closes() {
        let bl = Backlogs::new(300);
        let u: Arc<str> = "w1".into();
        let offer: Outbound = Arc::new(ServerMsg::Offer {
            job_id: "j1".into(),
            lat: 1.0,
            lng: 2.0,
            skill: "x".into(),
            description: String::new(),
            distance_m: 3.0,
            expires_at: "t".into(),
            seq: 5,
        });
        let mut b = bl.entry(&u);
        bl.record(&mut b, 5, 0, &offer);
        let r = bl.replay(&b, None, 0, 256);
        assert_eq!(r.messages.len(), 1);
        assert!(r.resumed.is_none());
        // Replayed once only when the backlog already holds it.
        let r = bl.replay(&b, Some(4), 0, 256);
        assert_eq!(r.messages.len(), 1);
        bl.record(&mut b, 6, 0, &revoke("j1", 6));
        let r = bl.replay(&b, None, 0, 256);
        assert!(r.messages.is_empty());
    }
}
