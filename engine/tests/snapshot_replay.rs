//! Snapshot + replay rebuilds exactly the state that produced them, over
//! random command sequences (property test).

use engine::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Cmd {
    Pos(usize, f64, f64),
    Avail(usize, bool),
    Conn(usize, bool),
    Create(u8, f64, f64),
    Step(usize, u8),
    Cancel(usize),
    Retry(usize),
    Tick(u16),
    Snapshot,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let d = -0.05..0.05f64;
    prop_oneof![
        4 => (0usize..8, d.clone(), d.clone()).prop_map(|(w, a, b)| Cmd::Pos(w, a, b)),
        1 => (0usize..8, any::<bool>()).prop_map(|(w, b)| Cmd::Avail(w, b)),
        1 => (0usize..8, prop::bool::weighted(0.8)).prop_map(|(w, b)| Cmd::Conn(w, b)),
        3 => (0u8..2, d.clone(), d).prop_map(|(s, a, b)| Cmd::Create(s, a, b)),
        4 => (0usize..8, 0u8..4).prop_map(|(w, s)| Cmd::Step(w, s)),
        1 => (0usize..40).prop_map(Cmd::Cancel),
        1 => (0usize..40).prop_map(Cmd::Retry),
        2 => (1u16..60).prop_map(Cmd::Tick),
        1 => Just(Cmd::Snapshot),
    ]
}

fn wid(i: usize) -> WorkerId {
    WorkerId::from(format!("w{i}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_plus_replay_is_the_live_state(cmds in prop::collection::vec(cmd(), 1..120)) {
        let cfg = EngineConfig { offer_timeout_s: 10, search_timeout_s: 60, ..EngineConfig::default() };
        let e = Engine::new(cfg.clone()).unwrap();
        let mut now = Millis(1_700_000_000_000);
        let (lat0, lng0) = (-33.8688, 151.2093);
        let sk = |i: u8| Skill::new(if i == 0 { "a" } else { "b" }).unwrap();
        let mut log: Vec<Event> = Vec::new();
        for i in 0..8 {
            log.extend(e.register_worker(&wid(i), &[sk((i % 2) as u8)], now).unwrap());
        }
        let mut snap = e.snapshot();
        let mut jobs: Vec<JobId> = Vec::new();
        for c in cmds {
            let r = match c {
                Cmd::Pos(w, a, b) => e.update_position(&wid(w), lat0 + a, lng0 + b, now),
                Cmd::Avail(w, b) => e.set_available(&wid(w), b, now),
                Cmd::Conn(w, b) => e.set_connected(&wid(w), b, now),
                Cmd::Create(s, a, b) => {
                    let id = JobId::from(format!("j{}", jobs.len()));
                    jobs.push(id.clone());
                    e.create_job(NewJob {
                        id,
                        resident_id: ResidentId::from("r"),
                        lat: lat0 + a,
                        lng: lng0 + b,
                        skill: sk(s),
                        description: "d".into(),
                    }, now)
                }
                Cmd::Step(w, s) => match e.current_job(&wid(w)) {
                    None => Ok(Vec::new()),
                    Some(j) => match s {
                        0 => e.accept(&j.id, &wid(w), now),
                        1 => e.decline(&j.id, &wid(w), now),
                        2 => e.arrive(&j.id, &wid(w), now),
                        _ => e.complete(&j.id, &wid(w), now),
                    },
                },
                Cmd::Cancel(k) => match jobs.get(k) {
                    Some(id) => e.cancel(id, None, now),
                    None => Ok(Vec::new()),
                },
                Cmd::Retry(k) => match jobs.get(k) {
                    Some(id) => e.retry(id, now),
                    None => Ok(Vec::new()),
                },
                Cmd::Tick(s) => {
                    now = now.plus_secs(s as u64);
                    Ok(e.tick(now))
                }
                Cmd::Snapshot => {
                    // Through serde, as persistence will store it.
                    let json = serde_json::to_string(&e.snapshot()).unwrap();
                    snap = serde_json::from_str(&json).unwrap();
                    log.clear();
                    Ok(Vec::new())
                }
            };
            if let Ok(ev) = r {
                log.extend(ev);
            }
        }
        let json = serde_json::to_string(&log).unwrap();
        let log: Vec<Event> = serde_json::from_str(&json).unwrap();

        let rebuilt = Engine::restore(cfg, &snap).unwrap();
        rebuilt.replay(&log).unwrap();
        let live = e.snapshot();
        let back = rebuilt.snapshot();
        prop_assert_eq!(back.last_seq, live.last_seq);
        prop_assert_eq!(&back.jobs, &live.jobs);
        prop_assert_eq!(rebuilt.reserved_workers(), e.reserved_workers());
        let skills = |s: &Snapshot| s.workers.iter().map(|w| (w.id.clone(), w.skills.clone())).collect::<Vec<_>>();
        prop_assert_eq!(skills(&back), skills(&live));
        // Replaying twice changes nothing: covered events are skipped.
        prop_assert_eq!(rebuilt.replay(&log).unwrap(), 0);
    }
}

#[test]
fn replay_refuses_gaps_and_impossible_events() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let now = Millis(0);
    let created = Event {
        seq: 1,
        at: now,
        kind: EventKind::JobCreated {
            job_id: JobId::from("j"),
            resident_id: ResidentId::from("r"),
            lat: 0.0,
            lng: 0.0,
            skill: Skill::new("a").unwrap(),
            description: String::new(),
            property_id: None,
            schedule_id: None,
            parts: vec![],
            urgency: Default::default(),
            triage: None,
            estimate_cents: None,
            attachments: vec![],
            search_deadline: Millis(1000),
        },
    };
    let gap = Event {
        seq: 3,
        ..created.clone()
    };
    assert!(matches!(e.replay([&gap]), Err(EngineError::Corrupt(_))));
    e.replay([&created]).unwrap();
    let accept_unoffered = Event {
        seq: 2,
        at: now,
        kind: EventKind::JobAccepted {
            job_id: JobId::from("j"),
            worker_id: WorkerId::from("w"),
            tracked: None,
        },
    };
    assert!(e.replay([&accept_unoffered]).is_err());
    assert_eq!(
        e.job(&JobId::from("j")).unwrap().status,
        JobStatus::Searching,
        "nothing half-applied"
    );
    assert_eq!(e.last_seq(), 1);
}

#[test]
fn restore_refuses_a_worker_holding_two_jobs() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let now = Millis(1_000_000);
    let w = WorkerId::from("w");
    e.register_worker(&w, &[Skill::new("a").unwrap()], now)
        .unwrap();
    e.update_position(&w, 1.0, 1.0, now).unwrap();
    e.set_connected(&w, true, now).unwrap();
    e.set_available(&w, true, now).unwrap();
    e.create_job(
        NewJob {
            id: JobId::from("j1"),
            resident_id: ResidentId::from("r"),
            lat: 1.0,
            lng: 1.0,
            skill: Skill::new("a").unwrap(),
            description: String::new(),
        },
        now,
    )
    .unwrap();
    let mut snap = e.snapshot();
    let mut twin = snap.jobs[0].clone();
    twin.id = JobId::from("j2");
    twin.seq = 2;
    snap.jobs.push(twin);
    assert!(matches!(
        Engine::restore(EngineConfig::default(), &snap),
        Err(EngineError::Corrupt(_))
    ));
}
