//! Many threads hammer one engine — positions, presence, availability, job
//! creation, accept/decline/arrive/complete, cancels and ticks — and the
//! invariant is checked three ways: while running (snapshots), over the
//! merged event stream (a worker is never offered a job while it holds one),
//! and at the end (reservation bits agree with the jobs, and replaying every
//! event on an empty engine gives the same jobs). A third of the jobs need
//! a part from the worker's van while workers use and restock their vans:
//! parts are held exactly for the accepted jobs that need them, never
//! twice, and no balance ever goes below zero.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;

use engine::*;

const WORKERS: usize = 40;
const WORKER_THREADS: usize = 4;
const RESIDENT_THREADS: usize = 2;
const OPS: usize = 4_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        self.below(1_000_000) as f64 / 1e6
    }
}

fn wid(i: usize) -> WorkerId {
    WorkerId::from(format!("w{i:03}"))
}

fn skills() -> [Skill; 2] {
    [Skill::new("a").unwrap(), Skill::new("b").unwrap()]
}

fn movement(
    id: String,
    from: Option<String>,
    to: Option<String>,
    kind: stock::MoveKind,
) -> stock::Movement {
    stock::Movement {
        id,
        part_id: "p1".into(),
        from,
        to,
        qty: 1,
        kind,
        job_id: None,
        by: "x".into(),
        at: Millis(0),
        note: String::new(),
        from_available_after: None,
    }
}

/// Holds each worker's jobs per the snapshot; panics on two. Parts are
/// held for exactly the accepted jobs that need them; nothing is negative.
fn check_snapshot(s: &Snapshot) {
    for j in &s.jobs {
        let holds =
            !j.parts.is_empty() && matches!(j.status, JobStatus::Accepted | JobStatus::Arrived);
        assert_eq!(
            s.stock.reservations.contains_key(&j.id),
            holds,
            "{} ({}) and its parts",
            j.id,
            j.status
        );
    }
    assert!(s.stock.reservations.len() <= s.jobs.len());
    for (p, locs) in &s.stock.balances {
        for (l, b) in locs {
            assert!(
                b.on_hand >= 0 && b.reserved >= 0 && b.available() >= 0,
                "{p} at {l}: {b:?}"
            );
        }
    }
    let mut held: HashMap<&WorkerId, &JobId> = HashMap::new();
    for j in &s.jobs {
        if j.status.holds_worker() {
            let w = j.worker_id.as_ref().expect("holding job has a worker");
            if let Some(other) = held.insert(w, &j.id) {
                panic!("{w} holds {other} and {}", j.id);
            }
        }
    }
}

#[test]
fn no_worker_ever_holds_two_jobs() {
    let cfg = EngineConfig {
        offer_timeout_s: 2,
        search_timeout_s: 20,
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::new(cfg.clone()).unwrap());
    let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
    let done = Arc::new(AtomicBool::new(false));
    let now = |c: &AtomicI64| Millis(c.load(Ordering::Acquire));
    let (lat0, lng0) = (40.7128, -74.0060);

    let mut setup = Vec::new();
    for i in 0..WORKERS {
        let sk = skills();
        let mine = if i % 3 == 0 {
            &sk[..]
        } else {
            &sk[i % 2..i % 2 + 1]
        };
        setup.extend(engine.register_worker(&wid(i), mine, now(&clock)).unwrap());
    }
    let part = stock::Part {
        id: "p1".into(),
        sku: "P1".into(),
        name: "Pump".into(),
        fits: vec![],
        unit_cost_cents: 100,
        supplier: String::new(),
        reorder_point: 0,
        reorder_qty: 1,
        created_at: now(&clock),
    };
    setup.extend(engine.create_part(part, now(&clock)).unwrap());
    for i in 0..WORKERS {
        let to = Some(stock::van(&wid(i)));
        let m = movement(format!("s{i}"), None, to, stock::MoveKind::Receive);
        setup.extend(engine.move_stock(m, now(&clock)).unwrap());
    }

    let mut handles = Vec::new();
    for t in 0..WORKER_THREADS {
        let (engine, clock) = (engine.clone(), clock.clone());
        handles.push(thread::spawn(move || {
            let mut rng = Rng(0x1234_5678 + t as u64);
            let mut events = Vec::new();
            let mine: Vec<usize> = (0..WORKERS).filter(|i| i % WORKER_THREADS == t).collect();
            for _ in 0..OPS {
                let id = wid(mine[rng.below(mine.len() as u64) as usize]);
                let n = now(&clock);
                let r = match rng.below(11) {
                    10 => {
                        // Use one from the van, or restock it.
                        let van = Some(stock::van(&id));
                        let m = if rng.below(2) == 0 {
                            movement(
                                format!("c{t}-{}", rng.next()),
                                van,
                                None,
                                stock::MoveKind::Consume,
                            )
                        } else {
                            movement(
                                format!("r{t}-{}", rng.next()),
                                None,
                                van,
                                stock::MoveKind::Receive,
                            )
                        };
                        engine.move_stock(m, n)
                    }
                    0..=3 => {
                        let lat = lat0 + (rng.unit() - 0.5) * 0.1;
                        let lng = lng0 + (rng.unit() - 0.5) * 0.1;
                        engine.update_position(&id, lat, lng, n)
                    }
                    4 => engine.set_available(&id, rng.below(4) != 0, n),
                    5 => engine.set_connected(&id, rng.below(5) != 0, n),
                    _ => match engine.current_job(&id) {
                        None => Ok(Vec::new()),
                        Some(job) => match (job.status, rng.below(3)) {
                            (JobStatus::Offered, 0) => engine.decline(&job.id, &id, n),
                            (JobStatus::Offered, _) => engine.accept(&job.id, &id, n),
                            (JobStatus::Accepted, _) => engine.arrive(&job.id, &id, n),
                            (JobStatus::Arrived, _) => engine.complete(&job.id, &id, n),
                            _ => Ok(Vec::new()),
                        },
                    },
                };
                // Races (the job moved on meanwhile) are refused, never broken.
                match r {
                    Ok(ev) => events.extend(ev),
                    Err(EngineError::InvalidTransition { .. })
                    | Err(EngineError::OfferExpired)
                    | Err(EngineError::JobNotFound)
                    | Err(EngineError::InsufficientStock) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            events
        }));
    }
    for t in 0..RESIDENT_THREADS {
        let (engine, clock) = (engine.clone(), clock.clone());
        handles.push(thread::spawn(move || {
            let mut rng = Rng(0xdead_beef + t as u64);
            let mut events = Vec::new();
            let mut created = Vec::new();
            for k in 0..OPS / 4 {
                let n = now(&clock);
                if rng.below(5) == 0 && !created.is_empty() {
                    let id: &JobId = &created[rng.below(created.len() as u64) as usize];
                    match engine.cancel(id, None, n) {
                        Ok(ev) => events.extend(ev),
                        Err(EngineError::InvalidTransition { .. }) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                    continue;
                }
                let id = JobId::from(format!("t{t}-{k}"));
                let job = NewJob {
                    id: id.clone(),
                    resident_id: ResidentId::from(format!("r{t}")),
                    lat: lat0 + (rng.unit() - 0.5) * 0.1,
                    lng: lng0 + (rng.unit() - 0.5) * 0.1,
                    skill: skills()[rng.below(2) as usize].clone(),
                    description: String::new(),
                };
                let parts = if k % 3 == 0 {
                    vec![stock::PartLine {
                        part_id: "p1".into(),
                        qty: 1 + rng.below(2) as i64,
                    }]
                } else {
                    Vec::new()
                };
                let op = Op::CreateJobWith {
                    job,
                    opts: Box::new(jobs::JobOptions {
                        parts,
                        ..Default::default()
                    }),
                };
                let ev = op
                    .apply(&engine, n, &mut Holders::default())
                    .unwrap()
                    .events;
                events.extend(ev);
                created.push(id);
            }
            events
        }));
    }
    // The clock: time moves on and timeouts fire.
    let ticker = {
        let (engine, clock, done) = (engine.clone(), clock.clone(), done.clone());
        thread::spawn(move || {
            let mut events = Vec::new();
            while !done.load(Ordering::Acquire) {
                let n = clock.fetch_add(250, Ordering::AcqRel) + 250;
                events.extend(engine.tick(Millis(n)));
                thread::yield_now();
            }
            events
        })
    };
    // A watcher checks the invariant while everything runs.
    let watcher = {
        let (engine, done) = (engine.clone(), done.clone());
        thread::spawn(move || {
            let mut checks = 0;
            while !done.load(Ordering::Acquire) {
                check_snapshot(&engine.snapshot());
                checks += 1;
                thread::yield_now();
            }
            checks
        })
    };

    let mut events = setup;
    for h in handles {
        events.extend(h.join().unwrap());
    }
    done.store(true, Ordering::Release);
    events.extend(ticker.join().unwrap());
    assert!(watcher.join().unwrap() > 0);

    // The merged stream is the engine's total order: 1..=N with no gaps.
    events.sort_by_key(|e| e.seq);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "event stream has a gap or a duplicate");
    }
    let mut holding: HashMap<WorkerId, JobId> = HashMap::new();
    let mut offers = 0;
    for e in &events {
        match &e.kind {
            EventKind::JobOffered {
                job_id, worker_id, ..
            } => {
                offers += 1;
                if let Some(other) = holding.insert(worker_id.clone(), job_id.clone()) {
                    panic!("{worker_id} offered {job_id} while holding {other}");
                }
            }
            EventKind::OfferRevoked { worker_id, .. }
            | EventKind::JobCompleted { worker_id, .. } => {
                holding.remove(worker_id);
            }
            EventKind::JobCancelled {
                worker_id: Some(w), ..
            } => {
                holding.remove(w);
            }
            _ => {}
        }
    }
    assert!(
        offers > 100,
        "the run must actually dispatch ({offers} offers)"
    );

    let snap = engine.snapshot();
    check_snapshot(&snap);
    let mut from_jobs: Vec<WorkerId> = snap
        .jobs
        .iter()
        .filter(|j| j.status.holds_worker())
        .map(|j| j.worker_id.clone().unwrap())
        .collect();
    from_jobs.sort();
    assert_eq!(
        engine.reserved_workers(),
        from_jobs,
        "reservation bits agree with jobs"
    );
    let mut from_model: Vec<WorkerId> = holding.into_keys().collect();
    from_model.sort();
    assert_eq!(
        from_model, from_jobs,
        "the event stream tells the same story"
    );

    // Replaying everything on an empty engine rebuilds the same jobs.
    let replayed = Engine::new(cfg).unwrap();
    replayed.replay(&events).unwrap();
    assert_eq!(replayed.snapshot().jobs, snap.jobs);
    assert_eq!(replayed.snapshot().stock, snap.stock, "the ledger replays");
    let parts_jobs = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::PartsReserved { .. }))
        .count();
    assert!(parts_jobs > 10, "parts were reserved ({parts_jobs})");
    assert_eq!(replayed.reserved_workers(), from_jobs);
}
