//! What the engine knows about one worker, shared between the position path,
//! the spatial index and the matcher without any global lock.
//!
//! * `state` is one atomic word: connected, available and reserved bits.
//!   Reservation is a compare-and-swap on it, so a worker can be taken by one
//!   job only, however many threads match at once.
//! * `fix` is the last reported position behind a seqlock: the owner writes
//!   it without blocking readers, and readers never see a torn position.
//! * `place` says where the index filed the worker; its mutex serialises the
//!   worker's own updates (one app, one worker) and nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};
use seqlock::SeqLock;

use crate::geo::Unit;
use crate::index::Filed;
use crate::types::{Millis, Skill, WorkerId};

/// The worker holds an open socket (set by the gateway).
pub const CONNECTED: u8 = 1;
/// The worker has said it takes jobs.
pub const AVAILABLE: u8 = 2;
/// The worker holds an offered or active job.
pub const RESERVED: u8 = 4;

/// [`WorkerShared::track_due`] of a worker nobody tracks.
pub const NOT_TRACKED: i64 = i64::MAX;

/// A worker's last reported position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub unit: Unit,
    pub lat: f64,
    pub lng: f64,
    /// When it was reported; `Millis(i64::MIN)` when never.
    pub at: Millis,
}

impl Fix {
    pub const NONE: Fix = Fix {
        unit: Unit([0.0; 3]),
        lat: 0.0,
        lng: 0.0,
        at: Millis(i64::MIN),
    };
    pub fn is_set(&self) -> bool {
        self.at.0 != i64::MIN
    }
}

/// Interned skill number; its bit in a 64-bit mask is `id % 64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillId(pub u32);

impl SkillId {
    #[inline]
    pub fn bit(self) -> u64 {
        1u64 << (self.0 % 64)
    }
}

/// A worker's skills, as numbers (sorted) and as names.
pub struct Skills {
    pub ids: Box<[SkillId]>,
    pub names: Box<[Skill]>,
}

/// The worker as the index and the matcher see it.
pub struct WorkerShared {
    pub id: WorkerId,
    pub state: AtomicU8,
    /// Bloom-style mask of the skills: the one-instruction pre-filter.
    mask: AtomicU64,
    skills: RwLock<Skills>,
    pub fix: SeqLock<Fix>,
    /// Where the worker is filed in the index; `None` before its first position.
    pub(crate) place: Mutex<Option<Filed>>,
    /// The name its job's resident sees (`Job.worker_name`).
    pub(crate) name: RwLock<Option<Arc<str>>>,
    /// While it holds an accepted job: the earliest time (ms) a position
    /// report becomes a `WorkerTracked` event; `i64::MAX` otherwise. Read
    /// without any lock on every report, so a worker nobody tracks costs
    /// one atomic load.
    pub(crate) track_due: AtomicI64,
    /// A report came before `track_due`: the latest position is owed to
    /// the resident once it passes (sent by `tick`, the trailing edge).
    pub(crate) track_owed: AtomicBool,
}

impl WorkerShared {
    pub fn new(id: WorkerId, skills: Skills) -> Self {
        let w = WorkerShared {
            id,
            state: AtomicU8::new(0),
            mask: AtomicU64::new(0),
            skills: RwLock::new(Skills {
                ids: Box::new([]),
                names: Box::new([]),
            }),
            fix: SeqLock::new(Fix::NONE),
            place: Mutex::new(None),
            name: RwLock::new(None),
            track_due: AtomicI64::new(NOT_TRACKED),
            track_owed: AtomicBool::new(false),
        };
        w.set_skills(skills);
        w
    }

    /// Replaces the skills. The caller refiles the worker around this call.
    pub fn set_skills(&self, skills: Skills) {
        let mask = skills.ids.iter().fold(0, |m, s| m | s.bit());
        *self.skills.write() = skills;
        self.mask.store(mask, Ordering::Release);
    }

    /// The skill numbers, borrowed (no allocation on the position path).
    pub fn skill_ids(&self) -> MappedRwLockReadGuard<'_, [SkillId]> {
        RwLockReadGuard::map(self.skills.read(), |s| &*s.ids)
    }

    pub fn skill_names(&self) -> Vec<Skill> {
        self.skills.read().names.to_vec()
    }

    pub fn has_skill_named(&self, s: &Skill) -> bool {
        self.skills.read().names.contains(s)
    }

    pub fn name(&self) -> Option<Arc<str>> {
        self.name.read().clone()
    }

    /// Tracking: reports from `due_ms` on are forwarded (`NOT_TRACKED`: none).
    pub fn set_track_due(&self, due_ms: i64) {
        self.track_due.store(due_ms, Ordering::Release);
    }

    #[inline]
    pub fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Takes the worker for a job if it is connected, available and free.
    /// Fails when any of those changed since the matcher looked.
    pub fn try_reserve(&self) -> bool {
        let mut cur = self.state();
        loop {
            if cur & (CONNECTED | AVAILABLE | RESERVED) != CONNECTED | AVAILABLE {
                return false;
            }
            match self.state.compare_exchange_weak(
                cur,
                cur | RESERVED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Sets or clears flag bits; returns the previous state.
    pub fn set_flag(&self, flag: u8, on: bool) -> u8 {
        if on {
            self.state.fetch_or(flag, Ordering::AcqRel)
        } else {
            self.state.fetch_and(!flag, Ordering::AcqRel)
        }
    }
}

/// Skill interner: names to small numbers, so the hot scan compares integers.
#[derive(Default)]
pub struct SkillTable {
    ids: RwLock<HashMap<Skill, SkillId, ahash::RandomState>>,
}

impl SkillTable {
    /// The id of a skill, interning it when new.
    pub fn intern(&self, s: &Skill) -> SkillId {
        if let Some(id) = self.ids.read().get(s) {
            return *id;
        }
        let mut w = self.ids.write();
        let next = SkillId(w.len() as u32);
        *w.entry(s.clone()).or_insert(next)
    }

    /// The id of a skill no worker has ever had is `None`: nobody can match it.
    pub fn get(&self, s: &Skill) -> Option<SkillId> {
        self.ids.read().get(s).copied()
    }

    /// Interned, sorted and deduplicated.
    pub fn skills(&self, names: &[Skill]) -> Skills {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        let mut ids: Vec<SkillId> = names.iter().map(|s| self.intern(s)).collect();
        ids.sort();
        Skills {
            ids: ids.into_boxed_slice(),
            names: names.into_boxed_slice(),
        }
    }
}
