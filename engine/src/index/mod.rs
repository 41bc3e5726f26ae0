//! The spatial index: workers bucketed by H3 cell, searched ring by ring.
//!
//! Two levels, both sharded `DashMap`s so that writers only lock the buckets
//! they touch:
//! * **fine** (`fine_res`, res 8 by default, ~0.74 km² cells):
//!   `cell → [slot]`, one slot per skill of every worker with a position,
//!   sorted by skill, so a scan reads only the slots of the job's skill (a
//!   binary search away) and a position update does one map lookup. Dense
//!   metros resolve here in two or three rings.
//! * **coarse** (`coarse_res`, res 5 by default, ~250 km² cells): `(cell, skill) → [worker]`,
//!   one entry per skill. When the fine search has not settled after
//!   `fine_rings` rings (a rare skill, a sparse area), the search goes on here,
//!   where each ring covers kilometres and holds only workers with the skill.
//!
//! Fine buckets hold each worker's position and report time inline, so the
//! dense scan reads contiguous memory and follows the pointer
//! to the worker only for a candidate that would beat the best so far. Coarse
//! buckets hold pointers only (they are scanned rarely and read the position
//! from the worker's seqlock). A worker changes bucket only when it leaves its
//! fine cell, detected without H3 while the new point is inside the cell's
//! inscribed circle (the common case).
//!
//! ## Why the ring search is exact
//! After scanning the disk `D_k` (all cells within grid distance `k` of the
//! query's cell `c0`), any unscanned worker `p` lies in a cell outside `D_k`;
//! the geodesic from the query `q` to `p` leaves `D_k` at a point `x` of a
//! cell `c` at grid distance `k + 1`. So
//! `dist(q, p) ≥ dist(center(c0), center(c)) − dist(q, center(c0)) − R`,
//! where `R` bounds the distance from any cell's centre to its boundary, and
//! `dist(center(c0), center(c)) ≥ γ · (k + 1) · e` for a cell `k + 1` rings
//! out, `e` being H3's average edge length at the resolution. The search
//! stops once the best candidate is no farther than that bound: it always
//! accounts for the ring beyond the last one scanned.
//!
//! The two constants are measured, then given a margin, and the tests check
//! them on every pentagon neighbourhood and thousands of random cells per
//! resolution (`r_max_bounds_every_sampled_cell`,
//! `ring_distance_bound_holds`): the largest centre-to-vertex distance is
//! 1.10 e (we use `R` = 1.2 e; the test demands 5 % to spare) and the
//! nearest centre `j` rings out is never closer than 1.05 j e (we use
//! `γ` = 1.0; the test demands 3 % to spare). Regular hexagons would give
//! 1.0 e and 1.5 j e; the worst cases sit next to the twelve pentagons.

use std::hash::Hash;
use std::sync::Arc;

use ahash::RandomState;
use dashmap::DashMap;
use h3o::{CellIndex, Resolution};

use crate::geo::{chord2_to_m, LatLng, Unit};
use crate::types::{Millis, WorkerId};
use crate::worker::{SkillId, WorkerShared, AVAILABLE, CONNECTED, RESERVED};

/// Slack for float error in the stop rule, metres.
const SLACK_M: f64 = 0.5;
/// Centre-to-boundary bound as a multiple of H3's average edge length.
const R_MAX_FACTOR: f64 = 1.2;
/// Lower bound of the nearest centre `j` rings out, in units of `j × edge`.
const GAMMA: f64 = 1.0;

type Worker = Arc<WorkerShared>;

/// A worker under one of its skills in a fine bucket: what the scan needs
/// without leaving the bucket.
#[derive(Clone)]
struct Slot {
    unit: Unit,
    at: Millis,
    skill: SkillId,
    /// The slot of the worker's first skill: counts the worker once in `within`.
    primary: bool,
    w: Worker,
}

/// A fine cell's slots sorted by skill, with the skills alongside in their
/// own dense array: finding a skill's range reads a few bytes, not the slots.
#[derive(Default)]
struct Bucket {
    keys: Vec<SkillId>,
    slots: Vec<Slot>,
}

impl Bucket {
    /// The slots of one skill.
    #[inline]
    fn range(&self, s: SkillId) -> std::ops::Range<usize> {
        let lo = self.keys.partition_point(|x| *x < s);
        let hi = lo + self.keys[lo..].partition_point(|x| *x == s);
        lo..hi
    }

    fn insert(&mut self, slot: Slot) {
        let i = self.keys.partition_point(|x| *x <= slot.skill);
        self.keys.insert(i, slot.skill);
        self.slots.insert(i, slot);
    }

    fn remove(&mut self, s: SkillId, w: &Worker) {
        let r = self.range(s);
        if let Some(i) = self.slots[r.clone()]
            .iter()
            .position(|x| Arc::ptr_eq(&x.w, w))
        {
            self.keys.remove(r.start + i);
            self.slots.remove(r.start + i);
        }
    }

    fn slot_mut(&mut self, s: SkillId, w: &Worker) -> Option<&mut Slot> {
        let r = self.range(s);
        self.slots[r].iter_mut().find(|x| Arc::ptr_eq(&x.w, w))
    }
}

/// Which workers a search may return.
pub struct Filter<'a> {
    pub skill: SkillId,
    /// Only positions reported at or after this instant count.
    pub fresh_after: Millis,
    /// Workers that declined or let this job expire.
    pub excluded: &'a [WorkerId],
    pub max_radius_m: f64,
    /// A further condition on the worker (a job's parts in its van),
    /// checked on each candidate of the scan like presence.
    pub carries: Option<&'a dyn Fn(&WorkerId) -> bool>,
}

impl Filter<'_> {
    /// The checks that need the worker itself: presence, availability,
    /// reservation and exclusions. (The skill is the bucket's: both levels
    /// file a worker under each of its skills, and a skill change unfiles
    /// the old ones before filing the new.)
    #[inline]
    fn admits_worker(&self, w: &WorkerShared) -> bool {
        w.state() & (CONNECTED | AVAILABLE | RESERVED) == CONNECTED | AVAILABLE
            && !self.excluded.contains(&w.id)
            && self.carries.is_none_or(|c| c(&w.id))
    }
}

/// The nearest admitted worker found so far.
pub(crate) struct Best {
    pub c2: f64,
    pub worker: Worker,
}

impl Best {
    pub fn distance_m(&self) -> f64 {
        chord2_to_m(self.c2)
    }
    #[inline]
    fn beaten_by(best: &Option<Best>, c2: f64, w: &WorkerShared) -> bool {
        match best {
            None => true,
            Some(b) => c2 < b.c2 || (c2 == b.c2 && w.id < b.worker.id),
        }
    }
}

/// Where a worker is filed; kept in the worker's `place` mutex.
#[derive(Debug, Clone)]
pub struct Filed {
    /// The skills it is filed under (a copy, so the position path reads no lock).
    pub skills: Box<[SkillId]>,
    pub fine: CellIndex,
    pub coarse: CellIndex,
    /// Centre of the fine cell and the squared chord of a circle inside it:
    /// a new point within it is still in the same cell.
    pub center: Unit,
    pub inside_c2: f64,
}

/// The cells at exactly grid distance `k` from `origin`, pentagons included.
fn ring_into(origin: CellIndex, k: u32, out: &mut Vec<CellIndex>) {
    out.clear();
    for c in origin.grid_ring_fast(k) {
        match c {
            Some(c) => out.push(c),
            None => {
                // Pentagon distortion: the slow, always-correct walk.
                out.clear();
                out.extend(origin.grid_ring::<Vec<_>>(k));
                return;
            }
        }
    }
}

/// One resolution's constants for the stop rule.
struct Level {
    res: Resolution,
    edge_m: f64,
    r_max_m: f64,
}

impl Level {
    fn new(res: Resolution) -> Level {
        Level {
            res,
            edge_m: res.edge_length_m(),
            r_max_m: res.edge_length_m() * R_MAX_FACTOR,
        }
    }

    /// Rings to scan before a candidate `d` metres away is proven nearest.
    fn rings_to_prove(&self, d: f64, offset_m: f64) -> usize {
        let k1 = (d + offset_m + self.r_max_m + SLACK_M) / (GAMMA * self.edge_m);
        k1.ceil() as usize
    }

    /// No worker outside the first `k + 1` rings around the query's cell is nearer than this.
    #[inline]
    fn bound_m(&self, k: usize, offset_m: f64) -> f64 {
        GAMMA * (k + 1) as f64 * self.edge_m - offset_m - self.r_max_m - SLACK_M
    }
}

pub struct SpatialIndex {
    fine_level: Level,
    coarse_level: Level,
    fine_rings: usize,
    fine: DashMap<CellIndex, Bucket, RandomState>,
    coarse: DashMap<(CellIndex, SkillId), Vec<Worker>, RandomState>,
}

/// How a search at one level ended.
enum Settled {
    /// Nothing unscanned can beat the best (or lie within the radius).
    Yes,
    /// The ring budget ran out first.
    No,
}

impl SpatialIndex {
    pub fn new(fine_res: Resolution, coarse_res: Resolution, fine_rings: u32) -> Self {
        SpatialIndex {
            fine_level: Level::new(fine_res),
            coarse_level: Level::new(coarse_res),
            fine_rings: fine_rings.max(1) as usize,
            fine: DashMap::with_capacity_and_hasher_and_shard_amount(0, RandomState::new(), 256),
            coarse: DashMap::with_capacity_and_hasher_and_shard_amount(0, RandomState::new(), 64),
        }
    }

    /// Files a worker at `ll`. The caller holds the worker's `place` lock.
    pub fn file(&self, w: &Worker, ll: LatLng, unit: Unit, at: Millis) -> Filed {
        let h = ll.to_h3();
        let fine = h.to_cell(self.fine_level.res);
        let coarse = h.to_cell(self.coarse_level.res);
        let skills: Box<[SkillId]> = w.skill_ids().iter().copied().collect();
        self.add_fine(fine, &skills, w, unit, at);
        for s in skills.iter() {
            self.coarse.entry((coarse, *s)).or_default().push(w.clone());
        }
        let (center, inside_c2) = inscribed(fine);
        Filed {
            skills,
            fine,
            coarse,
            center,
            inside_c2,
        }
    }

    /// Records a new position of a filed worker, moving it if it left its
    /// fine cell. Returns true when it changed cell. The caller holds the
    /// worker's `place` lock.
    pub fn refile(
        &self,
        w: &Worker,
        filed: &mut Filed,
        ll: LatLng,
        unit: Unit,
        at: Millis,
    ) -> bool {
        let stays = unit.chord2(filed.center) <= filed.inside_c2 || {
            let fine = ll.to_h3().to_cell(self.fine_level.res);
            fine == filed.fine
        };
        if stays {
            if let Some(mut b) = self.fine.get_mut(&filed.fine) {
                for s in filed.skills.iter() {
                    if let Some(slot) = b.slot_mut(*s, w) {
                        slot.unit = unit;
                        slot.at = at;
                    }
                }
            }
            return false;
        }
        let h = ll.to_h3();
        let fine = h.to_cell(self.fine_level.res);
        let coarse = h.to_cell(self.coarse_level.res);
        self.add_fine(fine, &filed.skills, w, unit, at);
        self.remove_fine(&filed.fine, &filed.skills, w);
        if coarse != filed.coarse {
            for s in filed.skills.iter() {
                self.coarse.entry((coarse, *s)).or_default().push(w.clone());
                remove_worker(&self.coarse, &(filed.coarse, *s), w);
            }
        }
        let (center, inside_c2) = inscribed(fine);
        *filed = Filed {
            skills: std::mem::take(&mut filed.skills),
            fine,
            coarse,
            center,
            inside_c2,
        };
        true
    }

    /// Takes a worker out of the index.
    pub fn unfile(&self, w: &Worker, filed: &Filed) {
        self.remove_fine(&filed.fine, &filed.skills, w);
        for s in filed.skills.iter() {
            remove_worker(&self.coarse, &(filed.coarse, *s), w);
        }
    }

    fn add_fine(&self, cell: CellIndex, skills: &[SkillId], w: &Worker, unit: Unit, at: Millis) {
        let mut b = self.fine.entry(cell).or_default();
        for (i, s) in skills.iter().enumerate() {
            let slot = Slot {
                unit,
                at,
                skill: *s,
                primary: i == 0,
                w: w.clone(),
            };
            b.insert(slot);
        }
    }

    fn remove_fine(&self, cell: &CellIndex, skills: &[SkillId], w: &Worker) {
        if let dashmap::Entry::Occupied(mut e) = self.fine.entry(*cell) {
            let b = e.get_mut();
            for s in skills {
                b.remove(*s, w);
            }
            if b.slots.is_empty() {
                e.remove();
            }
        }
    }

    /// The nearest worker the filter admits, exactly; ties to the lowest id.
    pub fn nearest(&self, q: LatLng, f: &Filter<'_>) -> Option<Best> {
        let qu = q.to_unit();
        let h = q.to_h3();
        let max_c2 = crate::geo::m_to_chord2(f.max_radius_m);
        let mut best = None;
        let fine_origin = h.to_cell(self.fine_level.res);
        let settled = search(
            &self.fine_level,
            fine_origin,
            qu,
            f,
            &mut best,
            Some(self.fine_rings),
            |cell, best| {
                let Some(b) = self.fine.get(&cell) else {
                    return;
                };
                for s in &b.slots[b.range(f.skill)] {
                    if s.at < f.fresh_after {
                        continue;
                    }
                    let c2 = qu.chord2(s.unit);
                    if c2 <= max_c2 && Best::beaten_by(best, c2, &s.w) && f.admits_worker(&s.w) {
                        *best = Some(Best {
                            c2,
                            worker: s.w.clone(),
                        });
                    }
                }
            },
        );
        if let Settled::No = settled {
            let coarse_origin = h.to_cell(self.coarse_level.res);
            search(
                &self.coarse_level,
                coarse_origin,
                qu,
                f,
                &mut best,
                None,
                |cell, best| {
                    let Some(b) = self.coarse.get(&(cell, f.skill)) else {
                        return;
                    };
                    for w in b.iter() {
                        let fix = w.fix.read();
                        if !fix.is_set() || fix.at < f.fresh_after {
                            continue;
                        }
                        let c2 = qu.chord2(fix.unit);
                        if c2 <= max_c2 && Best::beaten_by(best, c2, w) && f.admits_worker(w) {
                            *best = Some(Best {
                                c2,
                                worker: w.clone(),
                            });
                        }
                    }
                },
            );
        }
        best
    }

    /// Every filed worker within `radius_m`, nearest first, at most `limit`,
    /// whatever its state. For ops views; scans the fine level only.
    pub fn within(&self, q: LatLng, radius_m: f64, limit: usize) -> Vec<(f64, Worker)> {
        let qu = q.to_unit();
        let origin = q.to_h3().to_cell(self.fine_level.res);
        let max_c2 = crate::geo::m_to_chord2(radius_m);
        let level = &self.fine_level;
        let mut found: Vec<(f64, Worker)> = Vec::new();
        let offset_m = qu.distance_m(Unit::from_h3(h3o::LatLng::from(origin)));
        let mut cells = Vec::with_capacity(64);
        let mut k = 0usize;
        loop {
            ring_into(origin, k as u32, &mut cells);
            if cells.is_empty() {
                break;
            }
            for cell in &cells {
                if let Some(b) = self.fine.get(cell) {
                    for s in b.slots.iter().filter(|s| s.primary) {
                        let c2 = qu.chord2(s.unit);
                        if c2 <= max_c2 {
                            found.push((c2, s.w.clone()));
                        }
                    }
                }
            }
            let bound = level.bound_m(k, offset_m);
            let kth_m = if limit > 0 && found.len() >= limit {
                found.select_nth_unstable_by(limit - 1, cmp_c2);
                chord2_to_m(found[limit - 1].0)
            } else {
                f64::INFINITY
            };
            if bound > radius_m || bound >= kth_m {
                break;
            }
            k += 1;
        }
        found.sort_by(cmp_c2);
        found.truncate(limit);
        found
            .into_iter()
            .map(|(c2, w)| (chord2_to_m(c2), w))
            .collect()
    }
}

/// Ring by ring around `origin` until nothing unscanned can matter.
fn search(
    level: &Level,
    origin: CellIndex,
    q: Unit,
    f: &Filter<'_>,
    best: &mut Option<Best>,
    ring_budget: Option<usize>,
    mut scan: impl FnMut(CellIndex, &mut Option<Best>),
) -> Settled {
    let center = Unit::from_h3(h3o::LatLng::from(origin));
    let offset_m = q.distance_m(center);
    let mut cells = Vec::with_capacity(64);
    let mut k = 0usize;
    loop {
        ring_into(origin, k as u32, &mut cells);
        if cells.is_empty() {
            // The rings have gone round the globe.
            return Settled::Yes;
        }
        for &cell in &cells {
            scan(cell, best);
        }
        let bound = level.bound_m(k, offset_m);
        if bound > f.max_radius_m {
            return Settled::Yes;
        }
        if let Some(b) = best {
            if b.distance_m() <= bound {
                return Settled::Yes;
            }
        }
        k += 1;
        if let Some(n) = ring_budget {
            // Out of budget; but a candidate in hand that a few more cheap
            // rings would prove nearest is worth those rings.
            let needed = best.as_ref().map_or(usize::MAX, |b| {
                level.rings_to_prove(b.distance_m(), offset_m)
            });
            if k >= n && needed > 2 * n {
                return Settled::No;
            }
        }
    }
}

fn cmp_c2(a: &(f64, Worker), b: &(f64, Worker)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id))
}

fn remove_worker<K: Hash + Eq + Copy>(
    map: &DashMap<K, Vec<Worker>, RandomState>,
    key: &K,
    w: &Worker,
) {
    if let dashmap::Entry::Occupied(mut e) = map.entry(*key) {
        let v = e.get_mut();
        if let Some(i) = v.iter().position(|x| Arc::ptr_eq(x, w)) {
            v.swap_remove(i);
        }
        if v.is_empty() {
            e.remove();
        }
    }
}

/// Centre of a cell and the squared chord of a circle around it that lies
/// inside the cell: 95% of the smallest centre-to-edge distance.
fn inscribed(cell: CellIndex) -> (Unit, f64) {
    let center = Unit::from_h3(h3o::LatLng::from(cell));
    let verts: Vec<Unit> = cell.boundary().iter().map(|v| Unit::from_h3(*v)).collect();
    let mut min_sin = f64::INFINITY;
    for i in 0..verts.len() {
        let (a, b) = (verts[i].0, verts[(i + 1) % verts.len()].0);
        let n = [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        if len == 0.0 {
            continue;
        }
        let c = center.0;
        // Sine of the angular distance from the centre to the edge's great circle.
        let s = ((c[0] * n[0] + c[1] * n[1] + c[2] * n[2]) / len).abs();
        min_sin = min_sin.min(s);
    }
    let angle = min_sin.min(1.0).asin() * 0.95;
    let chord = 2.0 * (angle / 2.0).sin();
    (center, chord * chord)
}

#[cfg(test)]
mod tests;
