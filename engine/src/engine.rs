//! The engine: commands in, events out.
//!
//! Two kinds of state, two kinds of locking:
//! * **Workers** (positions, availability, presence) change thousands of
//!   times a second from many threads. They live in a sharded registry and
//!   the spatial index; an update locks one registry shard and, only when the
//!   worker changes cell, two index buckets. No global lock.
//! * **Jobs** change a few hundred times a second. All job state sits behind
//!   one mutex ([`JobTable`]); every change is an [`Event`] applied by
//!   [`Engine::apply`], the same function replay uses, so live state and
//!   replayed state cannot drift apart. Matching runs under that mutex and
//!   claims its worker with a compare-and-swap on the worker's state word, so
//!   a worker that changes its flags concurrently is never taken stale.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use dashmap::DashMap;
use h3o::Resolution;
use parking_lot::Mutex;

use crate::config::{ConfigError, EngineConfig};
use crate::error::EngineError;
use crate::event::{Event, EventKind, RevokeReason};
use crate::geo::{LatLng, Unit};
use crate::index::SpatialIndex;
use crate::job::{Job, JobStatus};
use crate::types::{JobId, Millis, ResidentId, Skill, WorkerId};
use crate::worker::{Fix, SkillTable, WorkerShared, AVAILABLE, CONNECTED, RESERVED};

/// Longest description the engine stores, bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) skills: SkillTable,
    pub(crate) index: SpatialIndex,
    pub(crate) workers: DashMap<WorkerId, Arc<WorkerShared>, RandomState>,
    pub(crate) jobs: Mutex<JobTable>,
    /// Number of searching jobs, read without the job lock so that worker
    /// updates skip the wake-up path when nothing waits.
    pub(crate) waiting: AtomicUsize,
    /// Workers registered (never removed): the fleet size, read without
    /// walking the registry.
    pub(crate) worker_count: AtomicUsize,
    /// Triage's classifier and estimates, for requests (`triage`).
    pub(crate) triage_view: parking_lot::RwLock<crate::triage::TriageView>,
    /// The earliest time (ms) a tracked worker's owed position is due
    /// (`track_owed`); `NOT_TRACKED` when none is.
    pub(crate) track_flush_at: std::sync::atomic::AtomicI64,
    /// Where every emitted event goes, in `seq` order, under the job lock
    /// (the durable log on a single node). Replay does not feed it.
    pub(crate) sink: std::sync::OnceLock<Arc<dyn EventSink>>,
}

/// The one ordered stream of events: `push` is called for every event the
/// engine emits, in `seq` order, while the lock that assigned the `seq` is
/// held — so whoever reads the sink sees exactly the engine's order, with
/// no gaps and nothing to re-sort. It must not block for long.
pub trait EventSink: Send + Sync {
    fn push(&self, ev: &Event);
}

/// What a job command did: its events and the job as it stood right after
/// (read under the same lock, so no later command can show through).
#[derive(Debug, Clone)]
pub struct JobReceipt {
    pub events: Vec<Event>,
    pub job: Job,
}

/// A worker's registry entry, held by the gateway for the life of a
/// connection so that position updates skip the id lookup.
#[derive(Clone)]
pub struct WorkerHandle(Arc<WorkerShared>);

impl WorkerHandle {
    pub fn id(&self) -> &WorkerId {
        &self.0.id
    }

    /// Whether the worker was given the name its residents see.
    pub fn has_name(&self) -> bool {
        self.0.name.read().is_some()
    }
}

/// A searching job, as the wake-up path needs it.
pub(crate) struct Waiting {
    pub unit: Unit,
    /// When it was last searched for, for `rematch_interval_ms`.
    pub last_search: Millis,
    /// Its urgency's rank: waiting jobs are offered most urgent first.
    pub rank: u8,
}

/// All job state and its indexes. Only [`Engine::apply`] changes it.
#[derive(Default)]
pub(crate) struct JobTable {
    pub last_event: u64,
    pub last_job: u64,
    pub jobs: BTreeMap<u64, Job>,
    pub ids: HashMap<JobId, u64, RandomState>,
    pub(crate) by_status: HashMap<JobStatus, BTreeSet<u64>, RandomState>,
    pub(crate) by_resident: HashMap<ResidentId, BTreeSet<u64>, RandomState>,
    pub(crate) by_worker: HashMap<WorkerId, BTreeSet<u64>, RandomState>,
    /// The one offered-or-active job of each busy worker.
    pub(crate) holding: HashMap<WorkerId, u64, RandomState>,
    pub(crate) waiting: BTreeMap<u64, Waiting>,
    pub(crate) offer_deadlines: BTreeSet<(Millis, u64)>,
    pub(crate) search_deadlines: BTreeSet<(Millis, u64)>,
    /// Finished jobs by when they finished: what the archive takes next.
    pub(crate) finished: BTreeSet<(Millis, u64)>,
    /// Each live job's payments by `provider_ref` (a ref belongs to one
    /// job; the archive answers for jobs that left memory).
    pub(crate) payment_refs: HashMap<String, JobId, RandomState>,
    /// Each user's stored upload bytes (`attachment`; the quota).
    pub(crate) attachment_usage: BTreeMap<String, u64>,
    /// Who hears about what beyond the socket (`notify`).
    pub(crate) notify: crate::notify::NotifyState,
    /// Where work happens (`property`).
    pub(crate) properties: crate::property::PropertyState,
    /// Recurring maintenance (`maintenance`).
    pub(crate) maintenance: crate::maintenance::MaintenanceState,
    /// Parts, the stock ledger's balances, reorder tasks (`stock`).
    pub(crate) stock: crate::stock::StockState,
    /// Ops' triage examples and recent fares (`triage`).
    pub(crate) triage: crate::triage::TriageState,
}

/// A job as a resident creates it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewJob {
    pub id: JobId,
    pub resident_id: ResidentId,
    pub lat: f64,
    pub lng: f64,
    pub skill: Skill,
    pub description: String,
}

impl NewJob {
    /// The checks `create_job` makes before anything changes: callers that
    /// must not log a command bound to fail (a cluster) run them first.
    pub fn validate(&self) -> Result<(), EngineError> {
        LatLng::new(self.lat, self.lng)?;
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(EngineError::InvalidInput {
                field: "description",
                reason: "must be at most 4096 bytes",
            });
        }
        Ok(())
    }
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let res = |r: u8| Resolution::try_from(r).expect("validated resolution");
        let index = SpatialIndex::new(
            res(cfg.index.fine_res),
            res(cfg.index.coarse_res),
            cfg.index.fine_rings,
        );
        Ok(Engine {
            cfg,
            skills: SkillTable::default(),
            index,
            workers: DashMap::with_capacity_and_hasher_and_shard_amount(0, RandomState::new(), 128),
            jobs: Mutex::new(JobTable::default()),
            waiting: AtomicUsize::new(0),
            track_flush_at: std::sync::atomic::AtomicI64::new(crate::worker::NOT_TRACKED),
            worker_count: AtomicUsize::new(0),
            triage_view: parking_lot::RwLock::new(Default::default()),
            sink: std::sync::OnceLock::new(),
        })
    }

    /// Sends every event emitted from now on to `sink` (once per engine;
    /// false if one is attached already).
    pub fn attach(&self, sink: Arc<dyn EventSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    // ---- workers -------------------------------------------------------

    /// Adds a worker, or changes its skills. Idempotent: no event when nothing changes.
    pub fn register_worker(
        &self,
        id: &WorkerId,
        skills: &[Skill],
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut skills = skills.to_vec();
        skills.sort();
        skills.dedup();
        if let Some(w) = self.workers.get(id) {
            if w.skill_names() == skills {
                return Ok(Vec::new());
            }
        }
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let kind = EventKind::WorkerRegistered {
            worker_id: id.clone(),
            skills,
        };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    pub(crate) fn register_locked(&self, id: &WorkerId, names: &[Skill]) {
        let skills = self.skills.skills(names);
        match self.workers.entry(id.clone()) {
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::new(WorkerShared::new(id.clone(), skills)));
                self.worker_count.fetch_add(1, Ordering::Relaxed);
            }
            dashmap::Entry::Occupied(o) => {
                // New skills: refile under the new skill buckets and mask.
                let w = o.get();
                let mut place = w.place.lock();
                if let Some(f) = place.take() {
                    self.index.unfile(w, &f);
                }
                w.set_skills(skills);
                let fix = w.fix.read();
                if fix.is_set() {
                    let ll = LatLng {
                        lat: fix.lat,
                        lng: fix.lng,
                    };
                    *place = Some(self.index.file(w, ll, fix.unit, fix.at));
                }
            }
        }
    }

    /// The worker's handle, for [`Engine::update_position_of`].
    pub fn worker_handle(&self, id: &WorkerId) -> Option<WorkerHandle> {
        self.workers.get(id).map(|w| WorkerHandle(w.clone()))
    }

    /// Records a position report. Cheap: no allocation, one per-worker
    /// lock, and index work beyond one bucket only when the worker leaves
    /// its cell.
    pub fn update_position(
        &self,
        id: &WorkerId,
        lat: f64,
        lng: f64,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        // The registry's guard is let go before the job lock is taken
        // (the job lock is taken first everywhere else).
        let (w, wake, track) = {
            let w = self.workers.get(id).ok_or(EngineError::UnknownWorker)?;
            let wake = self.move_worker(&w, lat, lng, now)?;
            let track = self.track_due(&w, now);
            ((wake || track).then(|| w.clone()), wake, track)
        };
        let Some(w) = w else {
            return Ok(Vec::new());
        };
        let mut out = if wake { self.wake(&w, now) } else { Vec::new() };
        if track {
            self.track_report(&w, lat, lng, now, &mut out);
        }
        Ok(out)
    }

    /// [`Engine::update_position`] for a worker whose handle the caller holds.
    pub fn update_position_of(
        &self,
        h: &WorkerHandle,
        lat: f64,
        lng: f64,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut out = if self.move_worker(&h.0, lat, lng, now)? {
            self.wake(&h.0, now)
        } else {
            Vec::new()
        };
        if self.track_due(&h.0, now) {
            self.track_report(&h.0, lat, lng, now, &mut out);
        }
        Ok(out)
    }

    /// Stores the position and refiles; true when the worker may have just
    /// become matchable for a waiting job (new cell, or no longer stale).
    fn move_worker(
        &self,
        w: &Arc<WorkerShared>,
        lat: f64,
        lng: f64,
        now: Millis,
    ) -> Result<bool, EngineError> {
        let ll = LatLng::new(lat, lng)?;
        let unit = ll.to_unit();
        let mut place = w.place.lock();
        let prev_at = w.fix.read().at;
        *w.fix.lock_write() = Fix {
            unit,
            lat,
            lng,
            at: now,
        };
        let moved = match &mut *place {
            Some(f) => self.index.refile(w, f, ll, unit, now),
            None => {
                *place = Some(self.index.file(w, ll, unit, now));
                true
            }
        };
        drop(place);
        let became_fresh = prev_at < now.minus_secs(self.cfg.stale_after_s);
        Ok(self.waiting.load(Ordering::Acquire) > 0 && (moved || became_fresh))
    }

    pub fn set_available(
        &self,
        id: &WorkerId,
        available: bool,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.set_flag(id, AVAILABLE, available, now)
    }

    /// Presence: the gateway calls this when the worker's socket opens or closes.
    pub fn set_connected(
        &self,
        id: &WorkerId,
        connected: bool,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        self.set_flag(id, CONNECTED, connected, now)
    }

    fn set_flag(
        &self,
        id: &WorkerId,
        flag: u8,
        on: bool,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let shared = self
            .workers
            .get(id)
            .ok_or(EngineError::UnknownWorker)?
            .clone();
        let before = shared.set_flag(flag, on);
        if on && before & flag == 0 {
            return Ok(self.wake(&shared, now));
        }
        Ok(Vec::new())
    }

    /// A worker may have become matchable: give it the oldest waiting job it can take.
    fn wake(&self, w: &Arc<WorkerShared>, now: Millis) -> Vec<Event> {
        let mut out = Vec::new();
        if self.waiting.load(Ordering::Acquire) == 0 || !self.matchable(w, now) {
            return out;
        }
        let mut t = self.jobs.lock();
        self.offer_waiting(&mut t, &mut out, w, now);
        out
    }

    pub(crate) fn matchable(&self, w: &WorkerShared, now: Millis) -> bool {
        w.state() & (CONNECTED | AVAILABLE | RESERVED) == CONNECTED | AVAILABLE && {
            let fix = w.fix.read();
            fix.is_set() && fix.at >= now.minus_secs(self.cfg.stale_after_s)
        }
    }

    /// Drives time: dead-letters jobs past their search deadline, revokes
    /// lapsed offers and re-offers, and searches again for waiting jobs.
    pub fn tick(&self, now: Millis) -> Vec<Event> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        self.track_owed_locked(&mut t, &mut out, now);
        self.dispatch_schedules(&mut t, &mut out, now);
        while let Some(&(deadline, seq)) = t.search_deadlines.first() {
            if deadline > now {
                break;
            }
            let job = &t.jobs[&seq];
            let (job_id, status, worker) = (job.id.clone(), job.status, job.worker_id.clone());
            if status == JobStatus::Offered {
                let w = worker.clone().expect("offered job has a worker");
                let kind = EventKind::OfferRevoked {
                    job_id: job_id.clone(),
                    worker_id: w,
                    reason: RevokeReason::SearchTimeout,
                };
                if self.emit(&mut t, &mut out, now, kind).is_err() {
                    t.search_deadlines.remove(&(deadline, seq));
                    continue;
                }
            }
            if self
                .emit(&mut t, &mut out, now, EventKind::JobUnmatched { job_id })
                .is_err()
            {
                t.search_deadlines.remove(&(deadline, seq));
            }
            if let Some(w) = worker.filter(|_| status == JobStatus::Offered) {
                self.wake_locked(&mut t, &mut out, &w, now);
            }
        }
        while let Some(&(deadline, seq)) = t.offer_deadlines.first() {
            if deadline > now {
                break;
            }
            let job = &t.jobs[&seq];
            let Some(w) = job
                .worker_id
                .clone()
                .filter(|_| job.status == JobStatus::Offered)
            else {
                t.offer_deadlines.remove(&(deadline, seq));
                continue;
            };
            let kind = EventKind::OfferRevoked {
                job_id: job.id.clone(),
                worker_id: w.clone(),
                reason: RevokeReason::Expired,
            };
            if self.emit(&mut t, &mut out, now, kind).is_err() {
                t.offer_deadlines.remove(&(deadline, seq));
                continue;
            }
            self.dispatch(&mut t, &mut out, seq, now);
            self.wake_locked(&mut t, &mut out, &w, now);
        }
        let due = Millis(now.0.saturating_sub(self.cfg.rematch_interval_ms as i64));
        // Most urgent first, then oldest (the creation number).
        let mut stale: Vec<(u8, u64)> = t
            .waiting
            .iter()
            .filter(|(_, w)| w.last_search <= due)
            .map(|(s, w)| (w.rank, *s))
            .collect();
        stale.sort_unstable();
        let stale: Vec<u64> = stale.into_iter().map(|(_, s)| s).collect();
        for seq in stale {
            self.dispatch(&mut t, &mut out, seq, now);
        }
        out
    }

    /// After a restart: open offers go back to searching (their workers'
    /// sockets are gone). Accepted and arrived jobs keep their worker.
    pub fn requeue_offers(&self, now: Millis) -> Vec<Event> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let offered: Vec<u64> = t
            .by_status
            .get(&JobStatus::Offered)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for seq in offered {
            let job = &t.jobs[&seq];
            let kind = EventKind::OfferRevoked {
                job_id: job.id.clone(),
                worker_id: job.worker_id.clone().expect("offered job has a worker"),
                reason: RevokeReason::Restart,
            };
            let _ = self.emit(&mut t, &mut out, now, kind);
        }
        out
    }

    /// The earliest instant at which `tick` has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        let t = self.jobs.lock();
        let a = t.offer_deadlines.first().map(|d| d.0);
        let b = t.search_deadlines.first().map(|d| d.0);
        let c = t
            .waiting
            .values()
            .map(|w| {
                Millis(
                    w.last_search
                        .0
                        .saturating_add(self.cfg.rematch_interval_ms as i64),
                )
            })
            .min();
        let d = t.maintenance.dispatch_at.first().map(|d| d.0);
        let e = Some(self.track_flush_at.load(Ordering::Acquire))
            .filter(|&at| at != crate::worker::NOT_TRACKED)
            .map(Millis);
        [a, b, c, d, e].into_iter().flatten().min()
    }
}
