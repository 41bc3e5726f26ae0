//! Every transition and every error of the job state machine, driven with
//! virtual time.

use engine::*;

const T0: Millis = Millis(1_700_000_000_000);

fn at(s: i64) -> Millis {
    Millis(T0.0 + s * 1000)
}

fn w(id: &str) -> WorkerId {
    WorkerId::from(id)
}

fn j(id: &str) -> JobId {
    JobId::from(id)
}

fn skill(s: &str) -> Skill {
    Skill::new(s).unwrap()
}

/// Berlin, roughly.
const LAT: f64 = 52.52;
const LNG: f64 = 13.405;

/// Metres north of the job site, as latitude.
fn north(m: f64) -> f64 {
    LAT + m / 111_195.0
}

struct Fixture {
    e: Engine,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            e: Engine::new(EngineConfig::default()).unwrap(),
        }
    }

    /// A connected, available worker `m` metres north of the site.
    fn worker(&self, id: &str, m: f64, skills: &[&str], now: Millis) {
        let skills: Vec<Skill> = skills.iter().map(|s| skill(s)).collect();
        self.e.register_worker(&w(id), &skills, now).unwrap();
        self.e.update_position(&w(id), north(m), LNG, now).unwrap();
        self.e.set_connected(&w(id), true, now).unwrap();
        self.e.set_available(&w(id), true, now).unwrap();
    }

    fn create(&self, id: &str, sk: &str, now: Millis) -> Vec<Event> {
        self.e
            .create_job(
                NewJob {
                    id: j(id),
                    resident_id: ResidentId::from("r1"),
                    lat: LAT,
                    lng: LNG,
                    skill: skill(sk),
                    description: "leaky tap".into(),
                },
                now,
            )
            .unwrap()
    }

    fn status(&self, id: &str) -> JobStatus {
        self.e.job(&j(id)).unwrap().status
    }

    fn holder(&self, id: &str) -> Option<WorkerId> {
        self.e.job(&j(id)).unwrap().worker_id
    }
}

fn offered_to(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::JobOffered { worker_id, .. } => Some(worker_id.to_string()),
            _ => None,
        })
        .collect()
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

#[test]
fn nearest_worker_gets_the_offer_and_the_job_runs_to_completion() {
    let f = Fixture::new();
    f.worker("far", 900.0, &["plumbing"], T0);
    f.worker("near", 300.0, &["plumbing"], T0);
    f.worker("nearer-wrong-skill", 10.0, &["electrical"], T0);
    let ev = f.create("j1", "plumbing", at(1));
    assert_eq!(names(&ev), ["job_created", "job_offered"]);
    assert_eq!(offered_to(&ev), ["near"]);
    let job = f.e.job(&j("j1")).unwrap();
    assert_eq!(job.status, JobStatus::Offered);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.offer_expires_at, Some(at(16)));
    let d = job.offer_distance_m.unwrap();
    assert!((d - 300.0).abs() < 1.0, "{d}");

    // Accepted with a fresh position: its resident is told where the worker is.
    let ev = f.e.accept(&j("j1"), &w("near"), at(5)).unwrap();
    assert_eq!(names(&ev), ["job_accepted"]);
    match &ev[0].kind {
        EventKind::JobAccepted { tracked, .. } => {
            let t = tracked.expect("the position reported at T0 is fresh");
            assert_eq!((t.lat, t.lng, t.reported_at), (north(300.0), LNG, T0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.status("j1"), JobStatus::Accepted);
    f.e.arrive(&j("j1"), &w("near"), at(600)).unwrap();
    assert_eq!(f.status("j1"), JobStatus::Arrived);
    let ev = f.e.complete(&j("j1"), &w("near"), at(600 + 301)).unwrap();
    match &ev[0].kind {
        EventKind::JobCompleted { fare_cents, .. } => assert_eq!(*fare_cents, 2000),
        other => panic!("{other:?}"),
    }
    let job = f.e.job(&j("j1")).unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.fare_cents, Some(2000));
    assert_eq!(job.arrived_at, Some(at(600)));
    assert_eq!(job.completed_at, Some(at(901)));
    // The worker is matchable again.
    f.e.update_position(&w("near"), north(300.0), LNG, at(902))
        .unwrap();
    let ev = f.create("j2", "plumbing", at(902));
    assert_eq!(offered_to(&ev), ["near"]);
}

#[test]
fn ties_go_to_the_lowest_worker_id() {
    let f = Fixture::new();
    f.worker("b", 200.0, &["x"], T0);
    f.worker("a", 200.0, &["x"], T0);
    f.worker("c", 200.0, &["x"], T0);
    assert_eq!(offered_to(&f.create("j", "x", T0)), ["a"]);
}

#[test]
fn decline_goes_to_the_next_nearest_and_never_back() {
    let f = Fixture::new();
    f.worker("w1", 100.0, &["x"], T0);
    f.worker("w2", 200.0, &["x"], T0);
    f.create("j", "x", T0);
    let ev = f.e.decline(&j("j"), &w("w1"), at(1)).unwrap();
    assert_eq!(names(&ev), ["offer_revoked", "job_offered"]);
    match &ev[0].kind {
        EventKind::OfferRevoked { reason, .. } => assert_eq!(*reason, RevokeReason::Declined),
        other => panic!("{other:?}"),
    }
    assert_eq!(offered_to(&ev), ["w2"]);
    assert_eq!(f.e.job(&j("j")).unwrap().attempts, 2);
    let ev = f.e.decline(&j("j"), &w("w2"), at(2)).unwrap();
    assert_eq!(
        names(&ev),
        ["offer_revoked"],
        "nobody left who has not declined"
    );
    assert_eq!(f.status("j"), JobStatus::Searching);
    // The decliner can't take it back.
    assert_eq!(
        f.e.accept(&j("j"), &w("w1"), at(3)),
        Err(EngineError::InvalidTransition {
            from: JobStatus::Searching,
            step: Step::Accept
        })
    );
}

#[test]
fn offer_timeout_revokes_and_reoffers_and_late_accept_is_offer_expired() {
    let f = Fixture::new();
    f.worker("w1", 100.0, &["x"], T0);
    f.worker("w2", 200.0, &["x"], T0);
    f.create("j", "x", T0);
    assert!(f.e.tick(at(14)).is_empty(), "not yet");
    assert_eq!(f.e.next_deadline(), Some(at(15)));
    let ev = f.e.tick(at(15));
    assert_eq!(names(&ev), ["offer_revoked", "job_offered"]);
    assert_eq!(offered_to(&ev), ["w2"]);
    assert_eq!(
        f.e.accept(&j("j"), &w("w1"), at(16)),
        Err(EngineError::OfferExpired)
    );
    // Keep w2 fresh, let it expire too: searching again, still within search time.
    f.e.update_position(&w("w2"), north(200.0), LNG, at(20))
        .unwrap();
    let ev = f.e.tick(at(30));
    assert_eq!(names(&ev), ["offer_revoked"]);
    assert_eq!(f.status("j"), JobStatus::Searching);
}

#[test]
fn waiting_job_is_offered_when_a_worker_becomes_matchable() {
    let f = Fixture::new();
    f.create("j", "x", T0);
    assert_eq!(f.status("j"), JobStatus::Searching);

    // Becoming available.
    f.e.register_worker(&w("w1"), &[skill("x")], T0).unwrap();
    f.e.update_position(&w("w1"), north(50.0), LNG, at(1))
        .unwrap();
    assert!(f.e.set_connected(&w("w1"), true, at(1)).unwrap().is_empty());
    let ev = f.e.set_available(&w("w1"), true, at(2)).unwrap();
    assert_eq!(offered_to(&ev), ["w1"]);
    f.e.decline(&j("j"), &w("w1"), at(3)).unwrap();

    // Reconnecting.
    f.e.register_worker(&w("w2"), &[skill("x")], T0).unwrap();
    f.e.update_position(&w("w2"), north(50.0), LNG, at(3))
        .unwrap();
    f.e.set_available(&w("w2"), true, at(3)).unwrap();
    let ev = f.e.set_connected(&w("w2"), true, at(4)).unwrap();
    assert_eq!(offered_to(&ev), ["w2"]);
    f.e.decline(&j("j"), &w("w2"), at(5)).unwrap();

    // A stale position refreshed.
    f.e.register_worker(&w("w3"), &[skill("x")], T0).unwrap();
    f.e.update_position(&w("w3"), north(50.0), LNG, at(-100))
        .unwrap();
    f.e.set_connected(&w("w3"), true, at(5)).unwrap();
    f.e.set_available(&w("w3"), true, at(5)).unwrap();
    assert_eq!(f.status("j"), JobStatus::Searching, "w3 is stale");
    let ev =
        f.e.update_position(&w("w3"), north(60.0), LNG, at(6))
            .unwrap();
    assert_eq!(offered_to(&ev), ["w3"]);
    f.e.decline(&j("j"), &w("w3"), at(7)).unwrap();

    // Driving into range.
    f.worker("w4", 25_000.0, &["x"], at(7));
    assert_eq!(
        f.status("j"),
        JobStatus::Searching,
        "w4 is beyond max_radius"
    );
    let ev =
        f.e.update_position(&w("w4"), north(19_000.0), LNG, at(8))
            .unwrap();
    assert_eq!(offered_to(&ev), ["w4"]);
}

#[test]
fn waiting_jobs_are_served_oldest_first() {
    let f = Fixture::new();
    f.create("old", "x", T0);
    f.create("new", "x", at(1));
    f.worker("w", 10.0, &["x"], at(2));
    assert_eq!(f.status("old"), JobStatus::Offered);
    assert_eq!(f.status("new"), JobStatus::Searching);
    // Finishing the first frees the worker for the second.
    f.e.accept(&j("old"), &w("w"), at(3)).unwrap();
    f.e.arrive(&j("old"), &w("w"), at(4)).unwrap();
    let ev = f.e.complete(&j("old"), &w("w"), at(5)).unwrap();
    assert_eq!(names(&ev), ["job_completed", "job_offered"]);
    assert_eq!(f.holder("new"), Some(w("w")));
}

#[test]
fn rematch_on_tick_finds_workers_no_event_announced() {
    // A worker already inside its cell moves within range without changing
    // cell: only the periodic re-search notices.
    let cfg = EngineConfig {
        max_radius_m: 100.0,
        ..EngineConfig::default()
    };
    let f = Fixture {
        e: Engine::new(cfg).unwrap(),
    };
    f.worker("w", 120.0, &["x"], T0);
    f.create("j", "x", T0);
    assert_eq!(f.status("j"), JobStatus::Searching);
    f.e.update_position(&w("w"), north(90.0), LNG, at(1))
        .unwrap();
    let ev = f.e.tick(at(2));
    assert_eq!(offered_to(&ev), ["w"]);
}

#[test]
fn search_timeout_dead_letters_and_retry_searches_again() {
    let f = Fixture::new();
    f.create("j", "x", T0);
    let ev = f.e.tick(at(120));
    assert_eq!(names(&ev), ["job_unmatched"]);
    let job = f.e.job(&j("j")).unwrap();
    assert_eq!(job.status, JobStatus::Unmatched);
    assert_eq!(job.unmatched_at, Some(at(120)));
    let dead = f.e.list_jobs(&JobQuery {
        viewer: Viewer::Ops,
        status: Some(JobStatus::Unmatched),
        limit: 50,
    });
    assert_eq!(dead.len(), 1);
    assert!(f.e.tick(at(500)).is_empty(), "a dead letter has no timers");

    f.worker("w", 10.0, &["x"], at(600));
    assert_eq!(
        f.status("j"),
        JobStatus::Unmatched,
        "dead letters wait for ops"
    );
    let ev = f.e.retry(&j("j"), at(601)).unwrap();
    assert_eq!(names(&ev), ["job_retried", "job_offered"]);
    assert_eq!(f.e.job(&j("j")).unwrap().search_deadline, Some(at(721)));
    assert_eq!(
        f.e.retry(&j("j"), at(602)),
        Err(EngineError::InvalidTransition {
            from: JobStatus::Offered,
            step: Step::Retry
        })
    );
}

#[test]
fn search_timeout_during_an_offer_revokes_it() {
    let cfg = EngineConfig {
        offer_timeout_s: 100,
        search_timeout_s: 30,
        ..EngineConfig::default()
    };
    let f = Fixture {
        e: Engine::new(cfg).unwrap(),
    };
    f.worker("w", 10.0, &["x"], T0);
    f.create("j", "x", T0);
    let ev = f.e.tick(at(30));
    assert_eq!(names(&ev), ["offer_revoked", "job_unmatched"]);
    match &ev[0].kind {
        EventKind::OfferRevoked { reason, .. } => {
            assert_eq!(reason.api_name(), "expired");
        }
        other => panic!("{other:?}"),
    }
    assert!(!f.e.worker(&w("w")).unwrap().reserved);
    assert_eq!(f.e.current_job(&w("w")), None);
}

#[test]
fn accepted_jobs_are_never_dead_lettered() {
    let f = Fixture::new();
    f.worker("w", 10.0, &["x"], T0);
    f.create("j", "x", T0);
    f.e.accept(&j("j"), &w("w"), at(1)).unwrap();
    assert!(f.e.tick(at(10_000)).is_empty());
    assert_eq!(f.status("j"), JobStatus::Accepted);
}

#[test]
fn cancel_at_every_stage() {
    let f = Fixture::new();
    // searching
    f.create("s", "none", T0);
    let ev =
        f.e.cancel(&j("s"), Some("changed my mind".into()), at(1))
            .unwrap();
    assert_eq!(names(&ev), ["job_cancelled"]);
    let job = f.e.job(&j("s")).unwrap();
    assert_eq!(job.cancel_reason.as_deref(), Some("changed my mind"));
    assert_eq!(job.cancelled_at, Some(at(1)));
    // offered: the offer is revoked as cancelled
    f.worker("w", 10.0, &["x"], T0);
    f.create("o", "x", at(2));
    let ev = f.e.cancel(&j("o"), None, at(3)).unwrap();
    assert_eq!(names(&ev), ["offer_revoked", "job_cancelled"]);
    match &ev[0].kind {
        EventKind::OfferRevoked { reason, .. } => assert_eq!(*reason, RevokeReason::Cancelled),
        other => panic!("{other:?}"),
    }
    // accepted and arrived: the worker is released and named
    for (id, arrive) in [("a", false), ("r", true)] {
        f.create(id, "x", at(4));
        f.e.accept(&j(id), &w("w"), at(5)).unwrap();
        if arrive {
            f.e.arrive(&j(id), &w("w"), at(6)).unwrap();
        }
        let ev = f.e.cancel(&j(id), None, at(7)).unwrap();
        match &ev[0].kind {
            EventKind::JobCancelled { worker_id, .. } => {
                assert_eq!(worker_id.as_ref(), Some(&w("w")))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.e.current_job(&w("w")), None);
        assert!(!f.e.worker(&w("w")).unwrap().reserved);
    }
    // unmatched
    f.create("u", "none", at(8));
    f.e.tick(at(500));
    f.e.cancel(&j("u"), None, at(501)).unwrap();
    // final states refuse
    for id in ["s", "u"] {
        assert_eq!(
            f.e.cancel(&j(id), None, at(502)),
            Err(EngineError::InvalidTransition {
                from: JobStatus::Cancelled,
                step: Step::Cancel
            })
        );
    }
    f.e.update_position(&w("w"), north(10.0), LNG, at(503))
        .unwrap();
    f.create("c", "x", at(503));
    f.e.accept(&j("c"), &w("w"), at(503)).unwrap();
    f.e.arrive(&j("c"), &w("w"), at(503)).unwrap();
    f.e.complete(&j("c"), &w("w"), at(504)).unwrap();
    assert_eq!(
        f.e.cancel(&j("c"), None, at(505)),
        Err(EngineError::InvalidTransition {
            from: JobStatus::Completed,
            step: Step::Cancel
        })
    );
}

#[test]
fn cancelling_frees_the_worker_for_a_waiting_job() {
    let f = Fixture::new();
    f.worker("w", 10.0, &["x"], T0);
    f.create("first", "x", T0);
    f.create("second", "x", at(1));
    f.e.accept(&j("first"), &w("w"), at(2)).unwrap();
    let ev = f.e.cancel(&j("first"), None, at(3)).unwrap();
    assert_eq!(names(&ev), ["job_cancelled", "job_offered"]);
    assert_eq!(f.holder("second"), Some(w("w")));
}

#[test]
fn worker_steps_out_of_order_and_strangers() {
    let f = Fixture::new();
    f.worker("w", 10.0, &["x"], T0);
    f.worker("other", 5_000.0, &["y"], T0);
    f.create("j", "x", T0);
    let invalid = |from, step| Err(EngineError::InvalidTransition { from, step });
    assert_eq!(
        f.e.accept(&j("j"), &w("other"), at(1)),
        Err(EngineError::JobNotFound)
    );
    assert_eq!(
        f.e.accept(&j("nope"), &w("w"), at(1)),
        Err(EngineError::JobNotFound)
    );
    assert_eq!(
        f.e.arrive(&j("j"), &w("w"), at(1)),
        invalid(JobStatus::Offered, Step::Arrive)
    );
    assert_eq!(
        f.e.complete(&j("j"), &w("w"), at(1)),
        invalid(JobStatus::Offered, Step::Complete)
    );
    f.e.accept(&j("j"), &w("w"), at(2)).unwrap();
    assert_eq!(
        f.e.accept(&j("j"), &w("w"), at(3)),
        invalid(JobStatus::Accepted, Step::Accept)
    );
    assert_eq!(
        f.e.decline(&j("j"), &w("w"), at(3)),
        invalid(JobStatus::Accepted, Step::Revoke)
    );
    assert_eq!(
        f.e.complete(&j("j"), &w("w"), at(3)),
        invalid(JobStatus::Accepted, Step::Complete)
    );
    f.e.arrive(&j("j"), &w("w"), at(4)).unwrap();
    assert_eq!(
        f.e.arrive(&j("j"), &w("w"), at(5)),
        invalid(JobStatus::Arrived, Step::Arrive)
    );
    f.e.complete(&j("j"), &w("w"), at(6)).unwrap();
    assert_eq!(
        f.e.complete(&j("j"), &w("w"), at(7)),
        invalid(JobStatus::Completed, Step::Complete)
    );
    // A refused step changes nothing.
    assert_eq!(f.e.job(&j("j")).unwrap().version, 5);
}

#[test]
fn who_is_not_matchable() {
    let f = Fixture::new();
    f.worker("stale", 10.0, &["x"], at(-31));
    f.worker("unavailable", 20.0, &["x"], T0);
    f.e.set_available(&w("unavailable"), false, T0).unwrap();
    f.worker("offline", 30.0, &["x"], T0);
    f.e.set_connected(&w("offline"), false, T0).unwrap();
    f.worker("too-far", 20_001.0, &["x"], T0);
    f.worker("busy", 40.0, &["x"], T0);
    f.create("busy-job", "x", T0);
    assert_eq!(f.holder("busy-job"), Some(w("busy")));
    f.create("j", "x", T0);
    assert_eq!(f.status("j"), JobStatus::Searching);
    // A worker never holds two jobs.
    assert_eq!(f.e.current_job(&w("busy")).unwrap().id, j("busy-job"));
    f.worker("ok", 20_000.0 - 5.0, &["x"], T0);
    assert_eq!(f.holder("j"), Some(w("ok")));
}

#[test]
fn bad_input_is_refused_without_a_trace() {
    let f = Fixture::new();
    f.worker("w", 10.0, &["x"], T0);
    for (lat, lng, field) in [
        (f64::NAN, 0.0, "lat"),
        (91.0, 0.0, "lat"),
        (0.0, f64::INFINITY, "lng"),
        (0.0, -181.0, "lng"),
    ] {
        let err =
            f.e.create_job(
                NewJob {
                    id: j("bad"),
                    resident_id: ResidentId::from("r"),
                    lat,
                    lng,
                    skill: skill("x"),
                    description: String::new(),
                },
                T0,
            )
            .unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidInput { field: f, .. } if f == field),
            "{err:?}"
        );
        let err = f.e.update_position(&w("w"), lat, lng, T0).unwrap_err();
        assert!(matches!(err, EngineError::InvalidInput { field: f, .. } if f == field));
    }
    assert_eq!(f.e.stats().jobs, 0);
    assert_eq!(
        f.e.update_position(&w("ghost"), 1.0, 1.0, T0),
        Err(EngineError::UnknownWorker)
    );
    f.create("dup", "x", T0);
    let again = f.e.create_job(
        NewJob {
            id: j("dup"),
            resident_id: ResidentId::from("r"),
            lat: 0.0,
            lng: 0.0,
            skill: skill("x"),
            description: String::new(),
        },
        T0,
    );
    assert_eq!(again, Err(EngineError::DuplicateJob));
    assert_eq!(f.e.stats().jobs, 1);
    assert!(f.e.nearby(0.0, 0.0, f64::NAN, 10).is_err());
}

#[test]
fn visibility_and_listing() {
    let f = Fixture::new();
    f.worker("w", 10.0, &["x"], T0);
    for (i, r) in ["r1", "r2", "r1"].iter().enumerate() {
        f.e.create_job(
            NewJob {
                id: j(&format!("j{i}")),
                resident_id: ResidentId::from(*r),
                lat: LAT,
                lng: LNG,
                skill: skill("x"),
                description: String::new(),
            },
            at(i as i64),
        )
        .unwrap();
    }
    let r1 = Viewer::Resident(ResidentId::from("r1"));
    let list = f.e.list_jobs(&JobQuery {
        viewer: r1.clone(),
        status: None,
        limit: 50,
    });
    let ids: Vec<_> = list.iter().map(|j| j.id.to_string()).collect();
    assert_eq!(ids, ["j2", "j0"], "own jobs, newest first");
    let one = f.e.list_jobs(&JobQuery {
        viewer: r1.clone(),
        status: None,
        limit: 1,
    });
    assert_eq!(one.len(), 1);
    assert!(
        f.e.job_for(&j("j1"), &r1).is_none(),
        "another resident's job is hidden"
    );
    assert!(
        f.e.job_for(&j("j0"), &Viewer::Worker(w("w"))).is_some(),
        "offered to w"
    );
    assert!(f.e.job_for(&j("j1"), &Viewer::Worker(w("w"))).is_none());
    assert!(f.e.job_for(&j("j1"), &Viewer::Ops).is_some());
    let mine = f.e.list_jobs(&JobQuery {
        viewer: Viewer::Worker(w("w")),
        status: None,
        limit: 50,
    });
    assert_eq!(mine.len(), 1);
    let searching = f.e.list_jobs(&JobQuery {
        viewer: Viewer::Ops,
        status: Some(JobStatus::Searching),
        limit: 50,
    });
    assert_eq!(searching.len(), 2);
}

#[test]
fn nearby_lists_workers_nearest_first() {
    let f = Fixture::new();
    f.worker("a", 500.0, &["x"], T0);
    f.worker("b", 100.0, &["y"], T0);
    f.worker("c", 3_000.0, &["x"], T0);
    f.e.set_available(&w("a"), false, T0).unwrap();
    let near = f.e.nearby(LAT, LNG, 1_000.0, 10).unwrap();
    let ids: Vec<_> = near.iter().map(|n| n.worker.id.to_string()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert!(!near[1].worker.available);
    assert!((near[0].distance_m - 100.0).abs() < 1.0);
    assert_eq!(f.e.nearby(LAT, LNG, 10_000.0, 2).unwrap().len(), 2);
}

#[test]
fn restart_requeues_offers_and_keeps_accepted_jobs() {
    let f = Fixture::new();
    f.worker("w1", 10.0, &["x"], T0);
    f.worker("w2", 20.0, &["x"], T0);
    f.create("offered", "x", T0);
    f.create("accepted", "x", T0);
    f.e.accept(&j("accepted"), &w("w2"), at(1)).unwrap();
    let ev = f.e.requeue_offers(at(2));
    assert_eq!(names(&ev), ["offer_revoked"]);
    assert_eq!(f.status("offered"), JobStatus::Searching);
    assert_eq!(f.holder("accepted"), Some(w("w2")));
}

#[test]
fn skills_can_change() {
    let f = Fixture::new();
    f.worker("w", 10.0, &["x"], T0);
    assert!(f
        .e
        .register_worker(&w("w"), &[skill("x")], T0)
        .unwrap()
        .is_empty());
    f.e.register_worker(&w("w"), &[skill("x"), skill("y")], T0)
        .unwrap();
    assert_eq!(offered_to(&f.create("j", "y", at(1))), ["w"]);
}

#[test]
fn the_worker_on_the_way_is_tracked_at_most_once_per_interval_until_arrival() {
    let f = Fixture::new();
    f.worker("ann", 2000.0, &["plumbing"], T0);
    f.create("j1", "plumbing", at(1));
    let tracked = |ev: &[Event]| -> Vec<(f64, Millis)> {
        ev.iter()
            .filter_map(|e| match &e.kind {
                EventKind::WorkerTracked {
                    job_id,
                    worker_id,
                    lat,
                    ..
                } => {
                    assert_eq!((job_id.as_str(), worker_id.as_str()), ("j1", "ann"));
                    Some((*lat, e.at))
                }
                _ => None,
            })
            .collect()
    };
    // Offered, not accepted: reports are not tracked.
    let ev =
        f.e.update_position(&w("ann"), north(1900.0), LNG, at(2))
            .unwrap();
    assert!(tracked(&ev).is_empty());
    // Its position is stale at acceptance (default 30 s): nothing at once…
    let ev = f.e.accept(&j("j1"), &w("ann"), at(40)).unwrap();
    assert!(tracked(&ev).is_empty(), "{ev:?}");
    // …the next report is, then at most one per 2 s, each from its report.
    let ev =
        f.e.update_position(&w("ann"), north(1800.0), LNG, at(41))
            .unwrap();
    assert_eq!(tracked(&ev), [(north(1800.0), at(41))]);
    let ev =
        f.e.update_position(&w("ann"), north(1700.0), LNG, Millis(at(42).0 + 999))
            .unwrap();
    assert!(tracked(&ev).is_empty());
    // A snapshot restored in between keeps the cadence.
    let e2 = Engine::restore(EngineConfig::default(), &f.e.snapshot()).unwrap();
    for e in [&f.e, &e2] {
        let ev = e
            .update_position(&w("ann"), north(1600.0), LNG, at(43))
            .unwrap();
        assert_eq!(tracked(&ev), [(north(1600.0), at(43))]);
        assert_eq!(e.job(&j("j1")).unwrap().tracked_at, Some(at(43)));
    }
    // A report too soon is owed: the interval's end is a deadline, and
    // `tick` sends it then, saying when it was reported.
    let ev =
        f.e.update_position(&w("ann"), north(1500.0), LNG, at(44))
            .unwrap();
    assert!(tracked(&ev).is_empty());
    assert!(f.e.next_deadline().is_some_and(|d| d <= at(45)));
    assert!(tracked(&f.e.tick(Millis(at(45).0 - 1))).is_empty());
    let ev = f.e.tick(at(45));
    assert_eq!(tracked(&ev), [(north(1500.0), at(45))]);
    match &ev[0].kind {
        EventKind::WorkerTracked { reported_at, .. } => assert_eq!(*reported_at, Some(at(44))),
        other => panic!("{other:?}"),
    }
    assert!(tracked(&f.e.tick(at(48))).is_empty(), "sent once");
    // Arrived: no more.
    f.e.arrive(&j("j1"), &w("ann"), at(50)).unwrap();
    let ev =
        f.e.update_position(&w("ann"), north(0.0), LNG, at(60))
            .unwrap();
    assert!(tracked(&ev).is_empty());
}

#[test]
fn offers_carry_the_worker_name_given_before_them() {
    let f = Fixture::new();
    f.worker("ann", 100.0, &["plumbing"], T0);
    let ev = f.e.name_worker(&w("ann"), "Ann Engineer", at(1)).unwrap();
    assert_eq!(names(&ev), ["worker_named"]);
    // The same name again changes nothing.
    assert!(f
        .e
        .name_worker(&w("ann"), "Ann Engineer", at(1))
        .unwrap()
        .is_empty());
    f.create("j1", "plumbing", at(2));
    assert_eq!(
        f.e.job(&j("j1")).unwrap().worker_name.as_deref(),
        Some("Ann Engineer")
    );
    f.e.decline(&j("j1"), &w("ann"), at(3)).unwrap();
    assert_eq!(f.e.job(&j("j1")).unwrap().worker_name, None);
    assert!(matches!(
        f.e.name_worker(&w("nobody"), "X", at(4)),
        Err(EngineError::UnknownWorker)
    ));
}
