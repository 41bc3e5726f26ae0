//! Tracking the worker on the way (API.md v1.2) and the name residents see:
//! which position reports become `WorkerTracked` events, the trailing edge
//! `tick` sends, and `WorkerNamed`. See ARCHITECTURE.md, "The worker on the
//! way".

use std::sync::atomic::Ordering;

use crate::engine::{Engine, JobTable};
use crate::error::EngineError;
use crate::event::{Event, EventKind, Tracked};
use crate::job::JobStatus;
use crate::types::{Millis, WorkerId};
use crate::worker::{WorkerShared, NOT_TRACKED};

impl Engine {
    /// Whether a report at `now` is due to reach the worker's resident;
    /// one too soon is owed to them at the end of the interval (`tick`).
    #[inline]
    pub(crate) fn track_due(&self, w: &WorkerShared, now: Millis) -> bool {
        let due = w.track_due.load(Ordering::Acquire);
        if now.0 >= due {
            return true;
        }
        if due != NOT_TRACKED {
            w.track_owed.store(true, Ordering::Release);
            self.track_flush_at.fetch_min(due, Ordering::AcqRel);
        }
        false
    }

    /// A report of a worker on the way to an accepted job, when the job is
    /// due one ([`Engine::track_due`]), becomes a `WorkerTracked` event
    /// (API.md "Tracking the engineer on the way").
    pub(crate) fn track_report(
        &self,
        w: &WorkerShared,
        lat: f64,
        lng: f64,
        now: Millis,
        out: &mut Vec<Event>,
    ) {
        let mut t = self.jobs.lock();
        let _ = self.track_locked(&mut t, out, &w.id, Some((lat, lng)), now);
    }

    /// The trailing edge (from `tick`): each tracked worker whose report
    /// came too soon gets its latest position sent once its interval ends.
    pub(crate) fn track_owed_locked(&self, t: &mut JobTable, out: &mut Vec<Event>, now: Millis) {
        let at = self.track_flush_at.load(Ordering::Acquire);
        if now.0 < at {
            return;
        }
        self.track_flush_at.store(NOT_TRACKED, Ordering::Release);
        let Some(accepted) = t.by_status.get(&JobStatus::Accepted) else {
            return;
        };
        let mut due_now = Vec::new();
        for seq in accepted {
            let Some(w) = t.jobs[seq]
                .worker_id
                .as_ref()
                .and_then(|w| self.workers.get(w))
            else {
                continue;
            };
            if !w.track_owed.load(Ordering::Acquire) {
                continue;
            }
            let due = w.track_due.load(Ordering::Acquire);
            if now.0 >= due {
                due_now.push(w.id.clone());
            } else {
                self.track_flush_at.fetch_min(due, Ordering::AcqRel);
            }
        }
        for w in due_now {
            let _ = self.track_locked(t, out, &w, None, now);
        }
    }

    /// Emits `WorkerTracked` for the accepted job `worker` holds, if it is
    /// due one: at `at` (a report), or at the worker's last position when
    /// that is fresh (acceptance).
    pub(crate) fn track_locked(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        worker: &WorkerId,
        at: Option<(f64, f64)>,
        now: Millis,
    ) -> Result<(), EngineError> {
        let Some(seq) = t.holding.get(worker).copied() else {
            return Ok(());
        };
        let job = &t.jobs[&seq];
        let due = job
            .tracked_at
            .is_none_or(|last| now.0 >= last.0.saturating_add(self.tracking_every_ms()));
        if job.status != JobStatus::Accepted || !due {
            return Ok(());
        }
        let position = match at {
            Some((lat, lng)) => Some((lat, lng, None)),
            None => self
                .fresh_position(worker, now)
                .map(|p| (p.lat, p.lng, (p.reported_at < now).then_some(p.reported_at))),
        };
        // Whatever was owed is this position or older (or stale now).
        if let Some(w) = self.workers.get(worker) {
            w.track_owed.store(false, Ordering::Release);
        }
        let Some((lat, lng, reported_at)) = position else {
            return Ok(());
        };
        let kind = EventKind::WorkerTracked {
            job_id: job.id.clone(),
            worker_id: worker.clone(),
            lat,
            lng,
            reported_at,
        };
        self.emit(t, out, now, kind)
    }

    /// The worker's last position while it is fresh (not stale at `now`).
    pub fn fresh_position(&self, worker: &WorkerId, now: Millis) -> Option<Tracked> {
        let w = self.workers.get(worker)?;
        let fix = w.fix.read();
        (fix.is_set() && fix.at >= now.minus_secs(self.cfg.stale_after_s)).then_some(Tracked {
            lat: fix.lat,
            lng: fix.lng,
            reported_at: fix.at,
        })
    }

    pub(crate) fn tracking_every_ms(&self) -> i64 {
        (self.cfg.tracking_every_s as i64).saturating_mul(1000)
    }

    /// The name a worker's residents see (`PATCH /v1/me`, registration).
    /// No event when it is already so.
    pub fn name_worker(
        &self,
        id: &WorkerId,
        name: &str,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let w = self.workers.get(id).ok_or(EngineError::UnknownWorker)?;
        if w.name().as_deref() == Some(name) {
            return Ok(Vec::new());
        }
        drop(w);
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let kind = EventKind::WorkerNamed {
            worker_id: id.clone(),
            name: name.to_owned(),
        };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }
}
