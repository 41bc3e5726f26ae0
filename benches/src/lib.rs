//! Shared fixtures for the benchmarks: deterministic fleets and queries, the
//! engine built from them, and the two baselines a team would reach for
//! instead — a brute-force scan and an R-tree (`rstar`) nearest-neighbour
//! search with the same filter — over exactly the same data.

use engine::geo::{LatLng, Unit};
use engine::{Engine, EngineConfig, Millis, Skill, WorkerId};
use rstar::primitives::GeomWithData;
use rstar::RTree;

pub const NOW: Millis = Millis(1_800_000_000_000);
/// Paris.
pub const CENTRE: (f64, f64) = (48.8566, 2.3522);
pub const SKILLS: usize = 5;
/// The skill only one far worker has in the `rare` scenario.
pub const RARE: u8 = 9;

/// Deterministic xorshift: the same fleet on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Offsets in metres to a position (equirectangular; fine at city scale).
pub fn offset(c: (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    let lat = c.0 + north_m / 111_195.0;
    let lng = c.1 + east_m / (111_195.0 * c.0.to_radians().cos());
    (lat.clamp(-90.0, 90.0), lng)
}

/// 4096 random steps of at most ±3 m north and east, as (Δlat, Δlng):
/// a worker walking a few metres between position reports.
pub fn walk_steps(rng: &mut Rng) -> Vec<(f64, f64)> {
    (0..4096)
        .map(|_| {
            offset(
                (0.0, 0.0),
                (rng.unit() - 0.5) * 6.0,
                (rng.unit() - 0.5) * 6.0,
            )
        })
        .collect()
}

/// Fleet sizes from `SIZES=1000,10000`, or 1k to 1M.
pub fn sizes_from_env() -> Vec<usize> {
    std::env::var("SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000, 1_000_000])
}

#[derive(Debug, Clone)]
pub struct FleetWorker {
    pub lat: f64,
    pub lng: f64,
    pub skills: Vec<u8>,
    pub available: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub lat: f64,
    pub lng: f64,
    pub skill: u8,
}

/// A fleet and the queries to run against it.
pub struct Scenario {
    pub name: &'static str,
    pub workers: Vec<FleetWorker>,
    pub queries: Vec<Query>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `n` workers uniform over 50 × 50 km; queries anywhere in the central 40 × 40 km.
    Dense,
    /// `n` workers uniform over 1,000 × 1,000 km: most queries have nobody within 20 km.
    Sparse,
    /// The dense fleet, but the query's skill is held by one worker 15 km away.
    Rare,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Dense => "dense",
            Shape::Sparse => "sparse",
            Shape::Rare => "rare",
        }
    }
}

pub fn scenario(shape: Shape, n: usize, queries: usize) -> Scenario {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ n as u64);
    let half_m = match shape {
        Shape::Dense | Shape::Rare => 25_000.0,
        Shape::Sparse => 500_000.0,
    };
    let mut workers: Vec<FleetWorker> = (0..n)
        .map(|_| {
            let (lat, lng) = offset(
                CENTRE,
                (rng.unit() * 2.0 - 1.0) * half_m,
                (rng.unit() * 2.0 - 1.0) * half_m,
            );
            let mut skills = vec![rng.below(SKILLS as u64) as u8];
            if rng.below(3) == 0 {
                skills.push(rng.below(SKILLS as u64) as u8);
            }
            FleetWorker {
                lat,
                lng,
                skills,
                available: rng.below(10) < 7,
            }
        })
        .collect();
    let queries = (0..queries)
        .map(|_| match shape {
            Shape::Dense | Shape::Sparse => {
                let (lat, lng) = offset(
                    CENTRE,
                    (rng.unit() * 2.0 - 1.0) * half_m * 0.8,
                    (rng.unit() * 2.0 - 1.0) * half_m * 0.8,
                );
                Query {
                    lat,
                    lng,
                    skill: rng.below(SKILLS as u64) as u8,
                }
            }
            Shape::Rare => {
                let (lat, lng) = offset(
                    CENTRE,
                    (rng.unit() - 0.5) * 2_000.0,
                    (rng.unit() - 0.5) * 2_000.0,
                );
                Query {
                    lat,
                    lng,
                    skill: RARE,
                }
            }
        })
        .collect();
    if shape == Shape::Rare {
        let (lat, lng) = offset(CENTRE, 0.0, 15_000.0);
        workers.push(FleetWorker {
            lat,
            lng,
            skills: vec![RARE],
            available: true,
        });
    }
    Scenario {
        name: shape.name(),
        workers,
        queries,
    }
}

pub fn skill(i: u8) -> Skill {
    Skill::new(&format!("s{i}")).expect("valid skill")
}

pub fn worker_id(i: usize) -> WorkerId {
    WorkerId::from(format!("w{i:07}"))
}

/// The engine holding the scenario's fleet: all connected, fresh, some available.
pub fn build_engine(s: &Scenario, cfg: EngineConfig) -> Engine {
    let e = Engine::new(cfg).expect("valid config");
    for (i, w) in s.workers.iter().enumerate() {
        let id = worker_id(i);
        let skills: Vec<Skill> = w.skills.iter().map(|k| skill(*k)).collect();
        e.register_worker(&id, &skills, NOW).expect("register");
        e.update_position(&id, w.lat, w.lng, NOW).expect("position");
        e.set_connected(&id, true, NOW).expect("connect");
        e.set_available(&id, w.available, NOW).expect("available");
    }
    e
}

/// What both baselines know of a worker: the same filter inputs as the engine.
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    pub unit: Unit,
    pub skills_mask: u64,
    pub available: bool,
    pub connected: bool,
    pub seen_at: Millis,
}

fn attrs(s: &Scenario) -> Vec<Attrs> {
    s.workers
        .iter()
        .map(|w| Attrs {
            unit: LatLng::new(w.lat, w.lng).expect("valid").to_unit(),
            skills_mask: w.skills.iter().fold(0, |m, k| m | 1u64 << k),
            available: w.available,
            connected: true,
            seen_at: NOW,
        })
        .collect()
}

#[inline]
fn admits(a: &Attrs, skill: u8, fresh_after: Millis) -> bool {
    a.connected && a.available && a.seen_at >= fresh_after && a.skills_mask & (1u64 << skill) != 0
}

/// Baseline 1: scan every worker.
pub struct BruteForce {
    attrs: Vec<Attrs>,
    max_c2: f64,
}

impl BruteForce {
    pub fn new(s: &Scenario, max_radius_m: f64) -> Self {
        BruteForce {
            attrs: attrs(s),
            max_c2: engine::geo::m_to_chord2(max_radius_m),
        }
    }

    /// Index of the nearest matchable worker (ids are ordered like indexes).
    pub fn nearest(&self, q: Query, fresh_after: Millis) -> Option<usize> {
        let qu = LatLng::new(q.lat, q.lng).expect("valid").to_unit();
        let mut best: Option<(f64, usize)> = None;
        for (i, a) in self.attrs.iter().enumerate() {
            if !admits(a, q.skill, fresh_after) {
                continue;
            }
            let c2 = qu.chord2(a.unit);
            if c2 <= self.max_c2 && best.is_none_or(|(b, _)| c2 < b) {
                best = Some((c2, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

/// Baseline 2: an R-tree over Earth-centred unit vectors (so its Euclidean
/// order is exactly great-circle order), walked nearest-first until a worker
/// passes the filter or the radius is exceeded.
pub struct RTreeBaseline {
    tree: RTree<GeomWithData<[f64; 3], u32>>,
    attrs: Vec<Attrs>,
    max_c2: f64,
}

impl RTreeBaseline {
    pub fn new(s: &Scenario, max_radius_m: f64) -> Self {
        let attrs = attrs(s);
        let points = attrs
            .iter()
            .enumerate()
            .map(|(i, a)| GeomWithData::new(a.unit.0, i as u32))
            .collect();
        RTreeBaseline {
            tree: RTree::bulk_load(points),
            attrs,
            max_c2: engine::geo::m_to_chord2(max_radius_m),
        }
    }

    pub fn nearest(&self, q: Query, fresh_after: Millis) -> Option<usize> {
        let qu = LatLng::new(q.lat, q.lng).expect("valid").to_unit();
        for p in self.tree.nearest_neighbor_iter_with_distance_2(&qu.0) {
            if p.1 > self.max_c2 {
                return None;
            }
            let i = p.0.data as usize;
            if admits(&self.attrs[i], q.skill, fresh_after) {
                return Some(i);
            }
        }
        None
    }
}

/// Skill names by number, made once so that timing loops do not allocate.
pub fn skill_table() -> Vec<Skill> {
    (0..=RARE).map(skill).collect()
}

/// The engine's answer as a fleet index, for cross-checking the baselines.
pub fn engine_nearest(e: &Engine, skills: &[Skill], q: Query) -> Option<usize> {
    e.nearest_matchable(q.lat, q.lng, &skills[q.skill as usize], NOW)
        .expect("valid query")
        .map(|(id, _)| id.as_str()[1..].parse().expect("numeric id"))
}

/// Stocks four parts into the fleet's vans — held by 50 %, 10 %, 1 % and
/// 0.1 % of them — and returns a one-line order for each, labelled.
pub fn stock_parts(e: &Engine, s: &Scenario) -> Vec<(&'static str, Vec<engine::stock::PartLine>)> {
    use engine::stock::{van, MoveKind, Movement, Part, PartLine};
    let kinds = [
        ("in_50pct", 2usize),
        ("in_10pct", 10),
        ("in_1pct", 100),
        ("in_0.1pct", 1000),
    ];
    let mut out = Vec::new();
    for (k, (label, every)) in kinds.into_iter().enumerate() {
        let part = Part {
            id: format!("p{k}"),
            sku: label.to_string(),
            name: "Part".into(),
            fits: vec![],
            unit_cost_cents: 100,
            supplier: String::new(),
            reorder_point: 0,
            reorder_qty: 1,
            created_at: NOW,
        };
        e.create_part(part, NOW).expect("part");
        for i in (k..s.workers.len()).step_by(every) {
            let m = Movement {
                id: format!("m{k}-{i}"),
                part_id: format!("p{k}"),
                from: None,
                to: Some(van(&worker_id(i))),
                qty: 1,
                kind: MoveKind::Receive,
                job_id: None,
                by: "bench".into(),
                at: NOW,
                note: String::new(),
                from_available_after: None,
            };
            e.move_stock(m, NOW).expect("stock");
        }
        out.push((
            label,
            vec![PartLine {
                part_id: format!("p{k}"),
                qty: 1,
            }],
        ));
    }
    out
}
