//! The matcher against a brute-force linear scan: random fleets, dense and
//! sparse, near the poles and the antimeridian, with random presence,
//! availability, freshness, skills and index resolutions. The engine must
//! offer exactly the worker the scan picks, and after each decline the next.

use engine::geo::LatLng;
use engine::*;
use proptest::prelude::*;

const NOW: Millis = Millis(1_800_000_000_000);

#[derive(Debug, Clone)]
struct W {
    lat: f64,
    lng: f64,
    skills: Vec<u8>,
    connected: bool,
    available: bool,
    age_s: u64,
}

/// The point `dist_m` from `(lat, lng)` along `bearing` (radians).
fn destination(lat: f64, lng: f64, bearing: f64, dist_m: f64) -> (f64, f64) {
    let d = dist_m / geo::EARTH_RADIUS_M;
    let (l1, g1) = (lat.to_radians(), lng.to_radians());
    let l2 = (l1.sin() * d.cos() + l1.cos() * d.sin() * bearing.cos())
        .clamp(-1.0, 1.0)
        .asin();
    let g2 = g1 + (bearing.sin() * d.sin() * l1.cos()).atan2(d.cos() - l1.sin() * l2.sin());
    let mut lng2 = g2.to_degrees();
    while lng2 > 180.0 {
        lng2 -= 360.0;
    }
    while lng2 < -180.0 {
        lng2 += 360.0;
    }
    (l2.to_degrees().clamp(-90.0, 90.0), lng2)
}

fn centre() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        (-70.0..70.0f64, -180.0..180.0f64),
        // Antimeridian.
        (
            -60.0..60.0f64,
            prop_oneof![179.9..180.0f64, -180.0..-179.9f64]
        ),
        // Poles.
        (
            prop_oneof![89.5..90.0f64, -90.0..-89.5f64],
            -180.0..180.0f64
        ),
        // A pentagon's neighbourhood (res-0 pentagon near 64.7N 10.5E).
        (64.0..65.5f64, 9.5..11.5f64),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    centre: (f64, f64),
    workers: Vec<W>,
    job_skill: u8,
    max_radius_m: f64,
    index: IndexConfig,
}

fn case() -> impl Strategy<Value = Case> {
    let spread = prop_oneof![200.0..3_000.0f64, 3_000.0..40_000.0f64];
    (
        centre(),
        spread,
        1usize..250,
        prop_oneof![Just(20_000.0), 500.0..60_000.0f64],
        (6u8..=10, 1u32..=4, 2u8..=5),
        any::<u64>(),
    )
        .prop_flat_map(
            |(centre, spread, n, max_radius_m, (fine, rings, gap), seed)| {
                let w = (
                    0.0..std::f64::consts::TAU,
                    0.0..1.0f64,
                    prop::collection::vec(0u8..4, 0..3),
                    prop::bool::weighted(0.9),
                    prop::bool::weighted(0.8),
                    prop_oneof![0u64..20, 25u64..60],
                );
                (prop::collection::vec(w, n), 0u8..4).prop_map(move |(ws, job_skill)| {
                    let mut workers: Vec<W> = ws
                        .into_iter()
                        .map(|(b, r, skills, connected, available, age_s)| {
                            // sqrt: uniform over the disk.
                            let (lat, lng) = destination(centre.0, centre.1, b, r.sqrt() * spread);
                            W {
                                lat,
                                lng,
                                skills,
                                connected,
                                available,
                                age_s,
                            }
                        })
                        .collect();
                    // A third of the fleets stand on a few shared spots: exact
                    // distance ties, which go to the lowest id.
                    if seed % 3 == 0 {
                        let spots = 1 + (seed / 3 % 4) as usize;
                        for i in spots..workers.len() {
                            let (lat, lng) = (workers[i % spots].lat, workers[i % spots].lng);
                            workers[i].lat = lat;
                            workers[i].lng = lng;
                        }
                    }
                    Case {
                        centre,
                        workers,
                        job_skill,
                        max_radius_m,
                        index: IndexConfig {
                            fine_res: fine,
                            coarse_res: fine.saturating_sub(gap).max(1),
                            fine_rings: rings,
                        },
                    }
                })
            },
        )
}

fn skill(i: u8) -> Skill {
    Skill::new(&format!("s{i}")).unwrap()
}

fn wid(i: usize) -> WorkerId {
    WorkerId::from(format!("w{i:04}"))
}

/// All matchable workers, nearest first, ties by id: what the engine must follow.
fn brute_force_order(c: &Case, q: (f64, f64)) -> Vec<WorkerId> {
    let qu = LatLng::new(q.0, q.1).unwrap().to_unit();
    let max_c2 = geo::m_to_chord2(c.max_radius_m);
    let mut v: Vec<(f64, WorkerId)> = c
        .workers
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.connected && w.available && w.age_s <= 30 && w.skills.contains(&c.job_skill)
        })
        .map(|(i, w)| {
            (
                LatLng::new(w.lat, w.lng).unwrap().to_unit().chord2(qu),
                wid(i),
            )
        })
        .filter(|(c2, _)| *c2 <= max_c2)
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    v.into_iter().map(|(_, id)| id).collect()
}

fn build(c: &Case) -> Engine {
    build_with(c, EngineConfig::default().parts_scan_max)
}

/// `parts_scan_max`: 0 matches every parts job by the ring search with the
/// van filter; the default lists the few vans holding a rare part.
fn build_with(c: &Case, parts_scan_max: usize) -> Engine {
    let cfg = EngineConfig {
        max_radius_m: c.max_radius_m,
        index: c.index.clone(),
        parts_scan_max,
        parts_scan_ratio: 1,
        ..EngineConfig::default()
    };
    let e = Engine::new(cfg).unwrap();
    for (i, w) in c.workers.iter().enumerate() {
        let id = wid(i);
        let skills: Vec<Skill> = w.skills.iter().map(|s| skill(*s)).collect();
        e.register_worker(&id, &skills, NOW).unwrap();
        e.update_position(&id, w.lat, w.lng, NOW.minus_secs(w.age_s))
            .unwrap();
        e.set_connected(&id, w.connected, NOW).unwrap();
        e.set_available(&id, w.available, NOW).unwrap();
    }
    e
}

fn offered(events: &[Event]) -> Option<WorkerId> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::JobOffered { worker_id, .. } => Some(worker_id.clone()),
        _ => None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn engine_offers_exactly_the_brute_force_order(c in case(), qb in 0.0..std::f64::consts::TAU, qr in 0.0..1.0f64) {
        let e = build(&c);
        let q = destination(c.centre.0, c.centre.1, qb, qr * 2_000.0);
        let expected = brute_force_order(&c, q);
        let job = JobId::from("job");
        let ev = e.create_job(NewJob {
            id: job.clone(),
            resident_id: ResidentId::from("r"),
            lat: q.0,
            lng: q.1,
            skill: skill(c.job_skill),
            description: String::new(),
        }, NOW).unwrap();
        let mut got = offered(&ev);
        // Follow the decline chain for the first few.
        for want in expected.iter().take(4) {
            prop_assert_eq!(got.as_ref(), Some(want));
            let ev = e.decline(&job, want, NOW).unwrap();
            got = offered(&ev);
        }
        if expected.len() <= 4 {
            prop_assert_eq!(got, None, "nobody else is matchable");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// A job that needs parts: the same exact order, among only the workers
    /// whose van has enough — the condition is part of the search, so a
    /// carrier far behind many nearer workers without the part is found.
    #[test]
    fn a_parts_job_follows_the_brute_force_order_among_carriers(
        c in case(),
        vans in prop::collection::vec(prop_oneof![3 => Just(0i64), 1 => 1i64..4], 250),
        need in 1i64..3,
        ring_search in any::<bool>(),
        qb in 0.0..std::f64::consts::TAU,
        qr in 0.0..1.0f64,
    ) {
        let e = build_with(&c, if ring_search { 0 } else { 2048 });
        let part = stock::Part {
            id: "p1".into(), sku: "P1".into(), name: "Pump".into(), fits: vec![],
            unit_cost_cents: 100, supplier: String::new(), reorder_point: 0, reorder_qty: 1,
            created_at: NOW,
        };
        e.create_part(part, NOW).unwrap();
        for (i, qty) in vans.iter().enumerate().take(c.workers.len()) {
            if *qty > 0 {
                let m = stock::Movement {
                    id: format!("m{i}"), part_id: "p1".into(), from: None,
                    to: Some(stock::van(&wid(i))), qty: *qty, kind: stock::MoveKind::Receive,
                    job_id: None, by: "ops".into(), at: NOW, note: String::new(),
                    from_available_after: None,
                };
                e.move_stock(m, NOW).unwrap();
            }
        }
        let q = destination(c.centre.0, c.centre.1, qb, qr * 2_000.0);
        let expected: Vec<WorkerId> = brute_force_order(&c, q)
            .into_iter()
            .filter(|w| vans[w.as_str()[1..].parse::<usize>().unwrap()] >= need)
            .collect();
        let job = JobId::from("job");
        let op = Op::CreateJobWith {
            job: NewJob {
                id: job.clone(),
                resident_id: ResidentId::from("r"),
                lat: q.0,
                lng: q.1,
                skill: skill(c.job_skill),
                description: String::new(),
            },
            opts: Box::new(jobs::JobOptions {
                parts: vec![stock::PartLine { part_id: "p1".into(), qty: need }],
                ..Default::default()
            }),
        };
        let ev = op.apply(&e, NOW, &mut Holders::default()).unwrap().events;
        let mut got = offered(&ev);
        for want in expected.iter().take(4) {
            prop_assert_eq!(got.as_ref(), Some(want));
            let ev = e.decline(&job, want, NOW).unwrap();
            got = offered(&ev);
        }
        if expected.len() <= 4 {
            prop_assert_eq!(got, None, "nobody else carries it");
        }
    }
}

/// The same check on a big dense metro and on a lone far worker, the two
/// shapes the benchmarks time.
#[test]
fn dense_metro_and_lone_far_worker() {
    let mut seed = 7u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1_000_000) as f64 / 1e6
    };
    let centre = (48.8566, 2.3522);
    let mut workers = Vec::new();
    for _ in 0..5_000 {
        let (lat, lng) = destination(
            centre.0,
            centre.1,
            rnd() * std::f64::consts::TAU,
            rnd().sqrt() * 25_000.0,
        );
        let sk = (rnd() * 3.0) as u8;
        workers.push(W {
            lat,
            lng,
            skills: vec![sk],
            connected: true,
            available: rnd() < 0.7,
            age_s: 0,
        });
    }
    // One worker with a rare skill 15 km out.
    let (lat, lng) = destination(centre.0, centre.1, 1.0, 15_000.0);
    workers.push(W {
        lat,
        lng,
        skills: vec![9],
        connected: true,
        available: true,
        age_s: 0,
    });
    for job_skill in [0u8, 9] {
        let c = Case {
            centre,
            workers: workers.clone(),
            job_skill,
            max_radius_m: 20_000.0,
            index: IndexConfig::default(),
        };
        let e = build(&c);
        for k in 0..50 {
            let q = destination(
                centre.0,
                centre.1,
                rnd() * std::f64::consts::TAU,
                rnd() * 10_000.0,
            );
            let expected = brute_force_order(&c, q);
            let id = JobId::from(format!("j{k}"));
            let ev = e
                .create_job(
                    NewJob {
                        id: id.clone(),
                        resident_id: ResidentId::from("r"),
                        lat: q.0,
                        lng: q.1,
                        skill: skill(job_skill),
                        description: String::new(),
                    },
                    NOW,
                )
                .unwrap();
            assert_eq!(
                offered(&ev).as_ref(),
                expected.first(),
                "query {k} skill {job_skill}"
            );
            e.cancel(&id, None, NOW).unwrap();
        }
    }
}
