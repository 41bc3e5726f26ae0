//! Read-only views of the engine: jobs for a viewer, workers, nearby, stats.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::geo::LatLng;
use crate::index::Filter;
use crate::job::{Job, JobStatus};
use crate::types::{JobId, Millis, ResidentId, Skill, WorkerId};
use crate::worker::{WorkerShared, AVAILABLE, CONNECTED, RESERVED};
use std::collections::BTreeSet;

/// Who is asking; decides which jobs a listing shows.
#[derive(Debug, Clone)]
pub enum Viewer {
    Resident(ResidentId),
    Worker(WorkerId),
    Ops,
}

impl Viewer {
    /// Whether this viewer may see `job`: its resident, a worker it was
    /// offered or assigned to, or ops. Anyone else must get 404.
    pub fn may_see(&self, job: &Job) -> bool {
        match self {
            Viewer::Resident(r) => job.resident_id == *r,
            Viewer::Worker(w) => job.involves(w),
            Viewer::Ops => true,
        }
    }

    /// Whether `job` belongs in this viewer's listing (a worker lists the
    /// jobs assigned to it, not the ones it passed on).
    pub fn lists(&self, job: &Job) -> bool {
        match self {
            Viewer::Resident(r) => job.resident_id == *r,
            Viewer::Worker(w) => job.worker_id.as_ref() == Some(w),
            Viewer::Ops => true,
        }
    }
}

/// A listing made of live jobs and archived ones: newest first (by creation
/// order), each job once (the live copy wins), at most `limit`.
pub fn merge_history(live: Vec<Job>, archived: Vec<Job>, limit: usize) -> Vec<Job> {
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<Job> = live
        .into_iter()
        .chain(archived)
        .filter(|j| seen.insert(j.id.clone()))
        .collect();
    all.sort_by_key(|j| std::cmp::Reverse(j.seq));
    all.truncate(limit);
    all
}

#[derive(Debug, Clone)]
pub struct JobQuery {
    pub viewer: Viewer,
    pub status: Option<JobStatus>,
    pub limit: usize,
}

/// A worker as ops see it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub id: WorkerId,
    pub skills: Vec<Skill>,
    pub connected: bool,
    pub available: bool,
    pub reserved: bool,
    /// `(lat, lng, reported_at)`.
    pub position: Option<(f64, f64, Millis)>,
    /// The name residents see, once given.
    pub name: Option<String>,
}

/// What the ops map shows of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetState {
    /// Connected, available, position fresh: matchable.
    Available,
    /// Holding an open offer.
    Offered,
    /// On a job, or connected but not taking work.
    Busy,
    /// Connected, but the position is older than `stale_after_s`.
    Stale,
    /// No open socket.
    Offline,
}

impl FleetState {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetState::Available => "available",
            FleetState::Offered => "offered",
            FleetState::Busy => "busy",
            FleetState::Stale => "stale",
            FleetState::Offline => "offline",
        }
    }
}

/// One worker of [`Engine::fleet`].
#[derive(Debug, Clone, PartialEq)]
pub struct FleetWorker {
    pub id: WorkerId,
    pub lat: f64,
    pub lng: f64,
    pub state: FleetState,
}

/// One result of [`Engine::nearby`].
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyWorker {
    pub worker: WorkerView,
    pub distance_m: f64,
}

/// Counts for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub workers: usize,
    pub jobs: usize,
    pub by_status: Vec<(JobStatus, usize)>,
    pub busy_workers: usize,
    /// (part, location) pairs at or below their reorder point.
    pub low_stock: usize,
    /// Reorder tasks open or ordered.
    pub reorder_open: usize,
}

impl Engine {
    pub fn job(&self, id: &JobId) -> Option<Job> {
        let t = self.jobs.lock();
        t.ids.get(id).map(|s| t.jobs[s].clone())
    }

    /// Whose a job is and where: (resident, lat, lng), without copying it.
    pub fn job_place(&self, id: &JobId) -> Option<(ResidentId, f64, f64)> {
        let t = self.jobs.lock();
        let job = &t.jobs[t.ids.get(id)?];
        Some((job.resident_id.clone(), job.lat, job.lng))
    }

    /// When the job was last offered, without copying it.
    pub fn offered_at(&self, id: &JobId) -> Option<Millis> {
        let t = self.jobs.lock();
        t.jobs[t.ids.get(id)?].offered_at
    }

    /// The job a worker holds (offered or active), if any.
    pub fn held_job(&self, worker: &WorkerId) -> Option<JobId> {
        let t = self.jobs.lock();
        t.holding.get(worker).map(|s| t.jobs[s].id.clone())
    }

    /// The job if `viewer` may see it: its resident, a worker it was offered
    /// or assigned to, or ops. Anyone else gets `None`, as if it did not exist.
    pub fn job_for(&self, id: &JobId, viewer: &Viewer) -> Option<Job> {
        let t = self.jobs.lock();
        let job = &t.jobs[t.ids.get(id)?];
        viewer.may_see(job).then(|| job.clone())
    }

    /// How many jobs are in memory (live, and finished but not yet archived).
    pub fn jobs_in_memory(&self) -> (usize, usize) {
        let t = self.jobs.lock();
        (t.jobs.len(), t.finished.len())
    }

    /// Jobs the viewer may list, newest first.
    pub fn list_jobs(&self, q: &JobQuery) -> Vec<Job> {
        let t = self.jobs.lock();
        let keep = |j: &&Job| q.status.is_none_or(|s| j.status == s);
        let pick = |seqs: Option<&BTreeSet<u64>>| -> Vec<Job> {
            seqs.into_iter()
                .flat_map(|s| s.iter().rev())
                .map(|s| &t.jobs[s])
                .filter(keep)
                .filter(|j| match &q.viewer {
                    Viewer::Worker(w) => j.worker_id.as_ref() == Some(w),
                    Viewer::Resident(_) | Viewer::Ops => true,
                })
                .take(q.limit)
                .cloned()
                .collect()
        };
        match (&q.viewer, q.status) {
            (Viewer::Resident(r), _) => pick(t.by_resident.get(r)),
            (Viewer::Worker(w), _) => pick(t.by_worker.get(w)),
            (Viewer::Ops, Some(s)) => pick(t.by_status.get(&s)),
            (Viewer::Ops, None) => t.jobs.values().rev().take(q.limit).cloned().collect(),
        }
    }

    /// The job a worker holds (offered, accepted or arrived), if any.
    pub fn current_job(&self, worker: &WorkerId) -> Option<Job> {
        let t = self.jobs.lock();
        t.holding.get(worker).map(|s| t.jobs[s].clone())
    }

    pub fn worker(&self, id: &WorkerId) -> Option<WorkerView> {
        self.workers.get(id).map(|e| view(&e))
    }

    /// Who a job for `skill` at this place would be offered to now, and how
    /// far away: the matcher without the reservation. Nobody is taken.
    pub fn nearest_matchable(
        &self,
        lat: f64,
        lng: f64,
        skill: &Skill,
        now: Millis,
    ) -> Result<Option<(WorkerId, f64)>, EngineError> {
        let q = LatLng::new(lat, lng)?;
        let Some(skill) = self.skills.get(skill) else {
            return Ok(None);
        };
        let f = Filter {
            skill,
            fresh_after: now.minus_secs(self.cfg.stale_after_s),
            excluded: &[],
            max_radius_m: self.cfg.max_radius_m,
            carries: None,
        };
        Ok(self
            .index
            .nearest(q, &f)
            .map(|b| (b.worker.id.clone(), b.distance_m())))
    }

    /// [`Engine::nearest_matchable`] for a job that needs `parts`: the
    /// nearest matchable worker whose van has every line available.
    pub fn nearest_matchable_carrying(
        &self,
        lat: f64,
        lng: f64,
        skill: &Skill,
        parts: &[crate::stock::PartLine],
        now: Millis,
    ) -> Result<Option<(WorkerId, f64)>, EngineError> {
        let q = LatLng::new(lat, lng)?;
        let Some(skill_id) = self.skills.get(skill) else {
            return Ok(None);
        };
        let t = self.jobs.lock();
        if let Some(found) = self.nearest_carrier(&t, parts, q, skill, &[], now) {
            return Ok(found.map(|b| (b.worker.id.clone(), b.distance_m())));
        }
        let carries = |w: &WorkerId| t.stock.van_has(w, parts);
        let f = Filter {
            skill: skill_id,
            fresh_after: now.minus_secs(self.cfg.stale_after_s),
            excluded: &[],
            max_radius_m: self.cfg.max_radius_m,
            carries: Some(&carries),
        };
        Ok(self
            .index
            .nearest(q, &f)
            .map(|b| (b.worker.id.clone(), b.distance_m())))
    }

    /// Workers with a known position within `radius_m`, nearest first, whatever their state.
    pub fn nearby(
        &self,
        lat: f64,
        lng: f64,
        radius_m: f64,
        limit: usize,
    ) -> Result<Vec<NearbyWorker>, EngineError> {
        let q = LatLng::new(lat, lng)?;
        if !(0.0..=crate::config::MAX_RADIUS_LIMIT_M).contains(&radius_m) {
            return Err(EngineError::InvalidInput {
                field: "radius_m",
                reason: "must be a number in [0, 500000]",
            });
        }
        Ok(self
            .index
            .within(q, radius_m, limit)
            .into_iter()
            .map(|(distance_m, w)| NearbyWorker {
                worker: view(&w),
                distance_m,
            })
            .collect())
    }

    /// Every worker with a known position and its state, for the ops map.
    pub fn fleet(&self, now: Millis) -> Vec<FleetWorker> {
        let fresh_after = now.minus_secs(self.cfg.stale_after_s);
        let mut out = Vec::with_capacity(self.workers.len());
        let offered: std::collections::HashSet<WorkerId> = {
            let t = self.jobs.lock();
            t.holding
                .iter()
                .filter(|(_, seq)| {
                    t.jobs
                        .get(*seq)
                        .is_some_and(|j| j.status == JobStatus::Offered)
                })
                .map(|(w, _)| w.clone())
                .collect()
        };
        for e in self.workers.iter() {
            let w = e.value();
            let fix = w.fix.read();
            if !fix.is_set() {
                continue;
            }
            let s = w.state();
            let state = if s & CONNECTED == 0 {
                FleetState::Offline
            } else if s & RESERVED != 0 {
                if offered.contains(&w.id) {
                    FleetState::Offered
                } else {
                    FleetState::Busy
                }
            } else if fix.at < fresh_after {
                FleetState::Stale
            } else if s & AVAILABLE != 0 {
                FleetState::Available
            } else {
                FleetState::Busy
            };
            out.push(FleetWorker {
                id: w.id.clone(),
                lat: fix.lat,
                lng: fix.lng,
                state,
            });
        }
        out
    }

    pub fn stats(&self) -> Stats {
        let t = self.jobs.lock();
        Stats {
            workers: self.workers.len(),
            jobs: t.jobs.len(),
            by_status: JobStatus::ALL
                .into_iter()
                .map(|s| (s, t.by_status.get(&s).map_or(0, |x| x.len())))
                .collect(),
            busy_workers: t.holding.len(),
            low_stock: t.stock.low_count(),
            reorder_open: t.stock.open_task_count(),
        }
    }
}

pub(crate) fn view(w: &WorkerShared) -> WorkerView {
    let s = w.state();
    let fix = w.fix.read();
    WorkerView {
        id: w.id.clone(),
        skills: w.skill_names(),
        connected: s & CONNECTED != 0,
        available: s & AVAILABLE != 0,
        reserved: s & RESERVED != 0,
        position: fix.is_set().then_some((fix.lat, fix.lng, fix.at)),
        name: w.name().map(|n| n.to_string()),
    }
}
