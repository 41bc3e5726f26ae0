//! Matching: offering a searching job to its nearest matchable worker
//! (a schedule's assigned worker first; for a job that needs parts, only
//! workers whose van has them), and a worker that became matchable taking
//! the most urgent waiting job it can.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::engine::{Engine, JobTable};
use crate::event::{Event, EventKind};
use crate::geo::{m_to_chord2, LatLng};
use crate::index::Filter;
use crate::job::JobStatus;
use crate::types::{JobId, Millis, Skill, WorkerId};
use crate::worker::{WorkerShared, RESERVED};

impl Engine {
    /// Offers a searching job to its nearest matchable worker, if there is one.
    pub(crate) fn dispatch(&self, t: &mut JobTable, out: &mut Vec<Event>, seq: u64, now: Millis) {
        let Some(job) = t.jobs.get(&seq) else { return };
        if job.status != JobStatus::Searching {
            return;
        }
        let Some(skill) = self.skills.get(&job.skill) else {
            if let Some(w) = t.waiting.get_mut(&seq) {
                w.last_search = now;
            }
            return;
        };
        let mut excluded: Vec<WorkerId> = job.passed.iter().map(|(w, _)| w.clone()).collect();
        let q = LatLng {
            lat: job.lat,
            lng: job.lng,
        };
        let job_id = job.id.clone();
        let parts = job.parts.clone();
        // A schedule's job goes first to its assigned worker, if matchable.
        let preferred = job
            .schedule_id
            .as_ref()
            .and_then(|s| t.maintenance.schedules.get(s))
            .and_then(|s| s.assigned_to.clone())
            .filter(|w| !excluded.contains(w))
            .and_then(|w| self.workers.get(&w).map(|e| e.clone()));
        if let Some(w) = preferred {
            let fix = w.fix.read();
            let distance_m = LatLng {
                lat: fix.lat,
                lng: fix.lng,
            }
            .distance_m(q);
            if self.matchable(&w, now)
                && w.has_skill_named(&job.skill)
                && distance_m <= self.cfg.max_radius_m
                && (parts.is_empty() || t.stock.van_has(&w.id, &parts))
                && w.try_reserve()
            {
                self.offer(t, out, &job_id, &w, distance_m, now);
                return;
            }
        }
        let skill_name = job.skill.clone();
        loop {
            // A job that needs parts: only workers whose van has them all,
            // as part of the exact search (not a filter on its result) —
            // over the few vans that hold a rare part directly.
            let best = if let Some(found) = (!parts.is_empty())
                .then(|| self.nearest_carrier(t, &parts, q, &skill_name, &excluded, now))
                .flatten()
            {
                found
            } else {
                let stock = &t.stock;
                let carries = |w: &WorkerId| stock.van_has(w, &parts);
                let f = Filter {
                    skill,
                    fresh_after: now.minus_secs(self.cfg.stale_after_s),
                    excluded: &excluded,
                    max_radius_m: self.cfg.max_radius_m,
                    carries: (!parts.is_empty()).then_some(&carries as &dyn Fn(&WorkerId) -> bool),
                };
                self.index.nearest(q, &f)
            };
            let Some(best) = best else {
                break;
            };
            if !best.worker.try_reserve() {
                // Its flags changed since the scan read them: look again without it.
                excluded.push(best.worker.id.clone());
                continue;
            }
            self.offer(t, out, &job_id, &best.worker, best.distance_m(), now);
            return;
        }
        if let Some(w) = t.waiting.get_mut(&seq) {
            w.last_search = now;
        }
    }

    /// The nearest admitted worker among the vans holding a job's parts,
    /// when those are few (at most `parts_scan_max`, and at most one in
    /// `parts_scan_ratio` of the fleet): `None` when they are not.
    /// The same rule as the index: connected, available, not reserved,
    /// fresh, the skill, within the radius, not excluded; nearest by chord,
    /// ties to the lowest id.
    pub(crate) fn nearest_carrier(
        &self,
        t: &JobTable,
        lines: &[crate::stock::PartLine],
        q: LatLng,
        skill: &Skill,
        excluded: &[WorkerId],
        now: Millis,
    ) -> Option<Option<crate::index::Best>> {
        // Listing the vans beats the ring search while they are few, in
        // number and as a share of the fleet (BENCHMARKS.md, parts).
        let fleet = self.worker_count.load(Ordering::Relaxed);
        let max = self
            .cfg
            .parts_scan_max
            .min(fleet / self.cfg.parts_scan_ratio.max(1));
        let ids = t.stock.few_carriers(lines, max)?;
        let qu = q.to_unit();
        let max_c2 = m_to_chord2(self.cfg.max_radius_m);
        let mut best: Option<crate::index::Best> = None;
        for id in ids {
            let Some(w) = self.workers.get(&id).map(|e| e.clone()) else {
                continue;
            };
            if excluded.contains(&id) || !self.matchable(&w, now) || !w.has_skill_named(skill) {
                continue;
            }
            let c2 = qu.chord2(w.fix.read().unit);
            let better = best
                .as_ref()
                .is_none_or(|b| c2 < b.c2 || (c2 == b.c2 && w.id < b.worker.id));
            if c2 <= max_c2 && better {
                best = Some(crate::index::Best { c2, worker: w });
            }
        }
        Some(best)
    }

    /// Offers the job to `w`, reserved by the caller; an offer the
    /// applier refuses gives the reservation back.
    fn offer(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        job_id: &JobId,
        w: &Arc<WorkerShared>,
        distance_m: f64,
        now: Millis,
    ) {
        let kind = EventKind::JobOffered {
            job_id: job_id.clone(),
            worker_id: w.id.clone(),
            expires_at: now.plus_secs(self.cfg.offer_timeout_s),
            distance_m,
        };
        if self.emit(t, out, now, kind).is_err() {
            w.set_flag(RESERVED, false);
        }
    }

    pub(crate) fn wake_locked(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        w: &WorkerId,
        now: Millis,
    ) {
        let shared = self.workers.get(w).map(|e| e.clone());
        if let Some(shared) = shared {
            self.offer_waiting(t, out, &shared, now);
        }
    }

    /// Offers waiting jobs, most urgent then oldest first, until this
    /// worker holds one or none fits.
    pub(crate) fn offer_waiting(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        w: &WorkerShared,
        now: Millis,
    ) {
        if t.waiting.is_empty() || !self.matchable(w, now) {
            return;
        }
        let at = w.fix.read().unit;
        let max_c2 = m_to_chord2(self.cfg.max_radius_m);
        let mut candidates: Vec<(u8, u64)> = t
            .waiting
            .iter()
            .filter(|(seq, wait)| {
                let job = &t.jobs[seq];
                wait.unit.chord2(at) <= max_c2
                    && w.has_skill_named(&job.skill)
                    && job.pass_of(&w.id).is_none()
                    && (job.parts.is_empty() || t.stock.van_has(&w.id, &job.parts))
            })
            .map(|(s, wait)| (wait.rank, *s))
            .collect();
        // Most urgent first, then oldest: an emergency never waits behind
        // a normal job.
        candidates.sort_unstable();
        for (_, seq) in candidates {
            self.dispatch(t, out, seq, now);
            if w.state() & RESERVED != 0 {
                break;
            }
        }
    }
}
