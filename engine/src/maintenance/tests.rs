//! The maintenance domain end to end in the engine: auto-dispatch (once
//! per occurrence, the assigned worker first), completion logs that roll
//! the schedule, the due/overdue check, and replay/snapshot giving the
//! same state.

use super::*;
use crate::event::Event;
use crate::job::{JobStatus, Step};
use crate::property::Property;
use crate::{Engine, EngineConfig, ResidentId};

const H: i64 = 3_600_000;
const DAY: i64 = 24 * H;
/// 2027-01-04T09:00:00Z (a Monday).
const T0: Millis = Millis(1_799_053_200_000);

fn engine() -> Engine {
    Engine::new(EngineConfig::default()).unwrap()
}

fn at(ms: i64) -> Millis {
    Millis(T0.0 + ms)
}

fn setup(e: &Engine) -> Vec<Event> {
    let mut out = e
        .create_property(
            Property {
                id: "p1".into(),
                owner_id: ResidentId::from("r1"),
                name: "Flat 3".into(),
                address: None,
                lat: 52.5,
                lng: 13.4,
                created_at: T0,
            },
            T0,
        )
        .unwrap();
    // `near` is 100 m away, `far` (the assigned one) about 1.1 km.
    for (w, lat) in [("near", 52.5009), ("far", 52.51)] {
        let id = WorkerId::from(w);
        out.extend(
            e.register_worker(&id, &[Skill::new("hvac").unwrap()], T0)
                .unwrap(),
        );
        e.set_connected(&id, true, T0).unwrap();
        e.set_available(&id, true, T0).unwrap();
        e.update_position(&id, lat, 13.4, T0).unwrap();
    }
    out
}

fn schedule(id: &str, anchor: Anchor, assigned: Option<&str>) -> Schedule {
    Schedule {
        id: id.into(),
        property_id: "p1".into(),
        title: "Boiler service".into(),
        skill: Skill::new("hvac").unwrap(),
        description: "annual".into(),
        every: Every {
            unit: StepUnit::Week,
            interval: 1,
        },
        timezone: "Europe/Berlin".into(),
        start_at: at(DAY),
        next_due_at: at(DAY),
        anchor,
        lead_s: 3600,
        assigned_to: assigned.map(WorkerId::from),
        paused: false,
        open_job_id: None,
        missed: 0,
        created_at: T0,
        updated_at: T0,
        dispatched_for: None,
        jobs_created: 0,
        last_done_at: None,
        alerted_due: None,
        alerted_overdue: None,
    }
}

fn keep_fresh(e: &Engine, now: Millis) {
    for (w, lat) in [("near", 52.5009), ("far", 52.51)] {
        e.update_position(&WorkerId::from(w), lat, 13.4, now)
            .unwrap();
    }
}

fn created(events: &[Event]) -> Vec<JobId> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::JobCreated { job_id, .. } => Some(job_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_due_schedule_dispatches_once_to_its_worker_and_completion_rolls_it() {
    let e = engine();
    let mut all = setup(&e);
    all.extend(
        e.create_schedule(schedule("s1", Anchor::Due, Some("far")), T0)
            .unwrap(),
    );
    // Not before next_due_at − lead_s.
    let early = at(DAY - H - 1);
    keep_fresh(&e, early);
    assert!(created(&e.tick(early)).is_empty());
    assert_eq!(e.next_deadline(), Some(at(DAY - H)));
    let now = at(DAY - H);
    keep_fresh(&e, now);
    let ev = e.tick(now);
    assert_eq!(created(&ev), [JobId::from("mnt_s1_1")]);
    all.extend(ev);
    let job = e.job(&JobId::from("mnt_s1_1")).unwrap();
    assert_eq!(job.schedule_id.as_deref(), Some("s1"));
    assert_eq!(job.property_id.as_deref(), Some("p1"));
    assert_eq!((job.lat, job.lng), (52.5, 13.4));
    assert_eq!(job.resident_id, ResidentId::from("r1"));
    // The assigned worker, though another is nearer.
    assert_eq!(job.status, JobStatus::Offered);
    assert_eq!(job.worker_id, Some(WorkerId::from("far")));
    assert_eq!(
        e.schedule("s1").unwrap().open_job_id,
        Some(JobId::from("mnt_s1_1"))
    );
    // Ticking again creates nothing more.
    assert!(created(&e.tick(at(DAY - H + 5_000))).is_empty());

    let far = WorkerId::from("far");
    let id = JobId::from("mnt_s1_1");
    for step in [Step::Accept, Step::Arrive] {
        all.extend(e.worker_step_receipt(&id, &far, step, now).unwrap().events);
    }
    let done = at(DAY + 2 * H);
    let r = e
        .worker_step_receipt(&id, &far, Step::Complete, done)
        .unwrap();
    let logged = r
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::MaintenanceLogged { log, roll } => Some((log.clone(), *roll)),
            _ => None,
        })
        .expect("completion writes a log");
    assert_eq!(logged.0.job_id, Some(id.clone()));
    assert_eq!(logged.0.performed_by, "far");
    assert_eq!(logged.0.property_id, "p1");
    all.extend(r.events);
    let s = e.schedule("s1").unwrap();
    // Anchor due: one week after the due date, not after the completion.
    assert_eq!(s.next_due_at, at(8 * DAY));
    assert_eq!((s.open_job_id, s.missed), (None, 0));
    assert_eq!(s.last_done_at, Some(done));

    // The same events replayed, and a snapshot, give the same schedule.
    let fresh = engine();
    fresh.replay(&all).unwrap();
    assert_eq!(fresh.schedule("s1"), e.schedule("s1"));
    let back = Engine::restore(EngineConfig::default(), &e.snapshot()).unwrap();
    assert_eq!(back.schedule("s1"), e.schedule("s1"));
    assert_eq!(back.next_deadline(), e.next_deadline(), "index rebuilt");
}

#[test]
fn the_assigned_worker_out_of_reach_leaves_it_to_the_nearest() {
    let e = engine();
    setup(&e);
    e.set_available(&WorkerId::from("far"), false, T0).unwrap();
    e.create_schedule(schedule("s1", Anchor::Due, Some("far")), T0)
        .unwrap();
    let now = at(DAY - H);
    keep_fresh(&e, now);
    e.tick(now);
    let job = e.job(&JobId::from("mnt_s1_1")).unwrap();
    assert_eq!(job.worker_id, Some(WorkerId::from("near")));
}

#[test]
fn a_cancelled_job_is_not_made_again_for_the_same_occurrence() {
    let e = engine();
    setup(&e);
    e.create_schedule(schedule("s1", Anchor::Due, None), T0)
        .unwrap();
    e.tick(at(DAY - H));
    e.cancel(&JobId::from("mnt_s1_1"), None, at(DAY - H + 1))
        .unwrap();
    assert_eq!(e.schedule("s1").unwrap().open_job_id, None);
    assert!(created(&e.tick(at(DAY))).is_empty());
    // Done by hand: the next occurrence gets its own job, numbered on.
    let log = Log {
        id: "l1".into(),
        schedule_id: "s1".into(),
        property_id: String::new(),
        job_id: None,
        performed_by: "ops1".into(),
        performed_at: at(DAY + H),
        notes: "done by hand".into(),
        issues_found: IssuesFound::Minor,
        attachments: vec![],
        created_at: at(DAY + H),
    };
    let ev = e.write_log(log, at(DAY + H)).unwrap();
    assert!(matches!(
        &ev[0].kind,
        EventKind::MaintenanceLogged { log, roll: Some(_) } if log.property_id == "p1"
    ));
    assert_eq!(e.schedule("s1").unwrap().next_due_at, at(8 * DAY));
    assert_eq!(created(&e.tick(at(8 * DAY - H))), [JobId::from("mnt_s1_2")]);
}

#[test]
fn anchor_due_counts_missed_occurrences_and_completion_steps_from_the_work() {
    let e = engine();
    setup(&e);
    let mut s = schedule("s1", Anchor::Due, None);
    s.paused = true; // no job: logged by hand
    e.create_schedule(s, T0).unwrap();
    let mut c = schedule("s2", Anchor::Completion, None);
    c.paused = true;
    e.create_schedule(c, T0).unwrap();
    let log = |id: &str, s: &str, when: Millis| Log {
        id: id.into(),
        schedule_id: s.into(),
        property_id: String::new(),
        job_id: None,
        performed_by: "ops1".into(),
        performed_at: when,
        notes: String::new(),
        issues_found: IssuesFound::None,
        attachments: vec![],
        created_at: when,
    };
    // Done three weeks and a day late: the occurrences at +8 d, +15 d and
    // +22 d have passed; the next is +29 d, three missed.
    let late = at(22 * DAY + 2 * H);
    e.write_log(log("l1", "s1", late), late).unwrap();
    let s = e.schedule("s1").unwrap();
    assert_eq!((s.next_due_at, s.missed), (at(29 * DAY), 3));
    // Completion anchor: one week after the work, in Berlin time.
    e.write_log(log("l2", "s2", late), late).unwrap();
    assert_eq!(e.schedule("s2").unwrap().next_due_at, at(29 * DAY + 2 * H));
}

#[test]
fn the_check_alerts_once_per_occurrence_and_state() {
    let e = engine();
    setup(&e);
    e.create_schedule(schedule("s1", Anchor::Due, None), T0)
        .unwrap();
    let mut p = schedule("s2", Anchor::Due, None);
    p.paused = true;
    e.create_schedule(p, T0).unwrap();
    let report = |ev: &[Event]| {
        let alerts: Vec<AlertKind> = ev
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::MaintenanceAlerted { alert, .. } => Some(*alert),
                _ => None,
            })
            .collect();
        let r = ev
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::MaintenanceChecked { report, .. } => Some(*report),
                _ => None,
            })
            .unwrap();
        (r, alerts)
    };
    // A day and a half before: upcoming.
    let (r, a) = report(&e.maintenance_check(false, at(-12 * H)).unwrap());
    assert_eq!((r.checked, r.due, r.overdue, r.alerts), (1, 0, 0, 0));
    assert!(a.is_empty());
    // Within the day before: due, alerted once.
    let (r, a) = report(&e.maintenance_check(false, at(2 * H)).unwrap());
    assert_eq!((r.checked, r.due, r.alerts), (1, 1, 1));
    assert_eq!(a, [AlertKind::Due]);
    let (r, _) = report(&e.maintenance_check(true, at(3 * H)).unwrap());
    assert_eq!((r.due, r.alerts), (1, 0), "never twice");
    assert_eq!(e.last_daily_check(), Some(at(3 * H)));
    // Past due: overdue, alerted once.
    let (r, a) = report(&e.maintenance_check(false, at(DAY + H)).unwrap());
    assert_eq!((r.overdue, r.alerts), (1, 1));
    assert_eq!(a, [AlertKind::Overdue]);
    let (r, _) = report(&e.maintenance_check(false, at(DAY + 2 * H)).unwrap());
    assert_eq!(r.alerts, 0);
}

#[test]
fn a_changed_rule_recomputes_the_due_date_and_bad_changes_change_nothing() {
    let e = engine();
    setup(&e);
    e.create_schedule(schedule("s1", Anchor::Due, None), T0)
        .unwrap();
    let before = e.schedule("s1").unwrap();
    let bad = SchedulePatch {
        timezone: Some("Mars/Olympus".into()),
        ..Default::default()
    };
    assert!(matches!(
        e.update_schedule("s1", bad, at(1)),
        Err(EngineError::InvalidInput {
            field: "timezone",
            ..
        })
    ));
    assert_eq!(e.schedule("s1").unwrap(), before);
    // Done once, then made monthly: the next is a month after the start
    // occurrence that follows the work.
    let when = at(DAY + H);
    e.write_log(
        Log {
            id: "l1".into(),
            schedule_id: "s1".into(),
            property_id: String::new(),
            job_id: None,
            performed_by: "ops1".into(),
            performed_at: when,
            notes: String::new(),
            issues_found: IssuesFound::None,
            attachments: vec![],
            created_at: when,
        },
        when,
    )
    .unwrap();
    let monthly = SchedulePatch {
        every: Some(Every {
            unit: StepUnit::Month,
            interval: 1,
        }),
        assigned_to: Some(Some(WorkerId::from("far"))),
        ..Default::default()
    };
    e.update_schedule("s1", monthly, at(2 * DAY)).unwrap();
    let s = e.schedule("s1").unwrap();
    // Start 2027-01-05 10:00 Berlin; monthly → 2027-02-05.
    assert_eq!(s.next_due_at, Millis(T0.0 + DAY + 31 * DAY));
    assert_eq!(s.assigned_to, Some(WorkerId::from("far")));
    let listed = e.list_schedules(&ScheduleQuery {
        viewer: ScheduleViewer::Worker(WorkerId::from("far")),
        property_id: None,
        status: None,
        due_before: None,
        limit: 10,
        now: at(2 * DAY),
    });
    assert_eq!(listed.len(), 1, "the worker index follows the change");
    e.delete_schedule("s1", at(3 * DAY)).unwrap();
    assert!(e.schedule("s1").is_none());
    assert!(e
        .list_schedules(&ScheduleQuery {
            viewer: ScheduleViewer::Worker(WorkerId::from("far")),
            property_id: None,
            status: None,
            due_before: None,
            limit: 10,
            now: at(3 * DAY),
        })
        .is_empty());
}

#[test]
fn a_patch_that_clears_the_worker_survives_the_clusters_encoding() {
    let p = SchedulePatch {
        assigned_to: Some(None),
        ..Default::default()
    };
    let back: SchedulePatch = rmp_serde::from_slice(&rmp_serde::to_vec_named(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    let set = SchedulePatch {
        assigned_to: Some(Some(WorkerId::from("w1"))),
        ..Default::default()
    };
    let back: SchedulePatch =
        rmp_serde::from_slice(&rmp_serde::to_vec_named(&set).unwrap()).unwrap();
    assert_eq!(back, set);
    let none = SchedulePatch::default();
    let back: SchedulePatch =
        rmp_serde::from_slice(&rmp_serde::to_vec_named(&none).unwrap()).unwrap();
    assert_eq!(back, none);
}
