//! A job's place in every index of the job table: put back whole from a
//! snapshot (or the archive), or taken out when it is archived.

use std::sync::atomic::Ordering;

use crate::engine::{Engine, JobTable, Waiting};
use crate::error::EngineError;
use crate::geo::LatLng;
use crate::job::{Job, JobStatus};
use crate::types::Millis;
use crate::worker::RESERVED;

impl Engine {
    /// Puts a job from a snapshot back with all its indexes.
    pub(crate) fn insert_restored(&self, t: &mut JobTable, job: Job) -> Result<(), EngineError> {
        let corrupt = |what: &str| EngineError::Corrupt(format!("job {}: {what}", job.id));
        if t.ids.contains_key(&job.id) || t.jobs.contains_key(&job.seq) {
            return Err(corrupt("appears twice"));
        }
        let ll = LatLng::new(job.lat, job.lng).map_err(|_| corrupt("bad position"))?;
        let seq = job.seq;
        if job.status.holds_worker() {
            let w = job.worker_id.as_ref().ok_or_else(|| corrupt("no worker"))?;
            if t.holding.contains_key(w) {
                return Err(corrupt("its worker holds another job"));
            }
            let e = self
                .workers
                .get(w)
                .ok_or_else(|| corrupt("unknown worker"))?;
            e.set_flag(RESERVED, true);
            t.holding.insert(w.clone(), seq);
        }
        for w in job
            .worker_id
            .iter()
            .chain(job.passed.iter().map(|(w, _)| w))
        {
            t.by_worker.entry(w.clone()).or_default().insert(seq);
        }
        if job.status == JobStatus::Searching {
            t.waiting.insert(
                seq,
                Waiting {
                    unit: ll.to_unit(),
                    last_search: Millis(i64::MIN),
                    rank: job.urgency.rank(),
                },
            );
        }
        if let (JobStatus::Offered, Some(d)) = (job.status, job.offer_expires_at) {
            t.offer_deadlines.insert((d, seq));
        }
        if let Some(d) = job.search_deadline {
            t.search_deadlines.insert((d, seq));
        }
        if let Some(d) = job.finished_at() {
            t.finished.insert((d, seq));
        }
        t.last_job = t.last_job.max(seq);
        t.ids.insert(job.id.clone(), seq);
        t.by_resident
            .entry(job.resident_id.clone())
            .or_default()
            .insert(seq);
        t.by_status.entry(job.status).or_default().insert(seq);
        for p in &job.payments {
            t.payment_refs
                .insert(p.provider_ref.clone(), job.id.clone());
        }
        t.jobs.insert(seq, job);
        self.waiting.store(t.waiting.len(), Ordering::Release);
        Ok(())
    }
}

/// Takes a finished job out of every index (it goes to the archive).
pub(crate) fn remove_job(t: &mut JobTable, seq: u64) {
    let Some(job) = t.jobs.remove(&seq) else {
        return;
    };
    t.ids.remove(&job.id);
    for p in &job.payments {
        t.payment_refs.remove(&p.provider_ref);
    }
    if let Some(d) = job.finished_at() {
        t.finished.remove(&(d, seq));
    }
    let drop_from = |m: &mut std::collections::BTreeSet<u64>| {
        m.remove(&seq);
        m.is_empty()
    };
    if t.by_status.get_mut(&job.status).is_some_and(drop_from) {
        t.by_status.remove(&job.status);
    }
    if t.by_resident
        .get_mut(&job.resident_id)
        .is_some_and(drop_from)
    {
        t.by_resident.remove(&job.resident_id);
    }
    for w in job
        .worker_id
        .iter()
        .chain(job.passed.iter().map(|(w, _)| w))
    {
        if t.by_worker.get_mut(w).is_some_and(drop_from) {
            t.by_worker.remove(w);
        }
    }
    if let Some(d) = job.search_deadline {
        t.search_deadlines.remove(&(d, seq));
    }
}
