use super::*;
use crate::{
    Engine, EngineConfig, Event, EventKind, JobId, Millis, NewJob, ResidentId, Skill, Snapshot,
    WorkerId,
};

const T0: Millis = Millis(1_700_000_000_000);

fn engine_with_worker() -> Engine {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let w = WorkerId::from("w1");
    e.register_worker(&w, &[Skill::new("plumbing").unwrap()], T0)
        .unwrap();
    e.update_position(&w, 52.52, 13.405, T0).unwrap();
    e.set_connected(&w, true, T0).unwrap();
    e.set_available(&w, true, T0).unwrap();
    e
}

fn create(e: &Engine, id: &str) -> Vec<Event> {
    e.create_job(
        NewJob {
            id: JobId::from(id),
            resident_id: ResidentId::from("r1"),
            lat: 52.52,
            lng: 13.405,
            skill: Skill::new("plumbing").unwrap(),
            description: String::new(),
        },
        T0,
    )
    .unwrap()
}

fn notices(events: &[Event]) -> Vec<(u64, Notice)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::NotificationQueued { notice } => Some((e.seq, (**notice).clone())),
            _ => None,
        })
        .collect()
}

fn hook(id: &str, events: &[&str]) -> Webhook {
    Webhook {
        id: id.into(),
        url: format!("https://example.com/{id}"),
        events: events.iter().map(|s| s.to_string()).collect(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        disabled: false,
    }
}

#[test]
fn nobody_listening_raises_nothing() {
    let e = engine_with_worker();
    let ev = create(&e, "j1");
    assert!(notices(&ev).is_empty());
    assert!(ev
        .iter()
        .all(|e| !matches!(e.kind, EventKind::NotificationQueued { .. })));
}

#[test]
fn each_job_event_notifies_whom_it_concerns_right_after_it() {
    let e = engine_with_worker();
    e.add_webhook(hook("all", &["*"]), T0).unwrap();
    e.add_webhook(hook("done", &["job.completed"]), T0).unwrap();
    let resident = NotifyPrefs {
        email: Some("r1@example.com".into()),
        ..Default::default()
    };
    e.set_notify_prefs("r1", resident, T0).unwrap();
    let worker = NotifyPrefs {
        sms: Some("+491701234567".into()),
        events: Some(vec!["job.offered".into()]),
        ..Default::default()
    };
    e.set_notify_prefs("w1", worker, T0).unwrap();

    let ev = create(&e, "j1");
    let n = notices(&ev);
    let types: Vec<&str> = n.iter().map(|(_, n)| n.event_type.as_str()).collect();
    assert_eq!(types, ["job.created", "job.offered"]);
    // Each right after the event that raised it, with its own seq as id.
    for (seq, notice) in &n {
        assert_eq!(notice.id, format!("ntf_{seq}"));
        let before = ev.iter().find(|e| e.seq == seq - 1).unwrap();
        assert_eq!(
            job_event_name(&before.kind),
            Some(notice.event_type.as_str())
        );
    }
    let created = &n[0].1;
    let targets: Vec<(Channel, &str)> = created
        .deliveries
        .iter()
        .map(|d| (d.channel, d.target.as_str()))
        .collect();
    // The worker is not concerned by a creation; "done" not by this event.
    assert_eq!(
        targets,
        [
            (Channel::Webhook, "https://example.com/all"),
            (Channel::Email, "r1@example.com")
        ]
    );
    assert_eq!(created.deliveries[0].endpoint.as_deref(), Some("all"));
    assert_eq!(created.deliveries[1].user.as_deref(), Some("r1"));
    assert_eq!(created.deliveries[1].id, format!("{}.1", created.id));
    let offered = &n[1].1;
    assert!(offered
        .deliveries
        .iter()
        .any(|d| d.channel == Channel::Sms && d.user.as_deref() == Some("w1")));
    let NoticeData::Job { job } = &offered.data else {
        panic!("a job notice")
    };
    assert_eq!(job.status, crate::JobStatus::Offered, "the job right after");

    // The worker opted out of everything but offers; "done" hears completion.
    let id = JobId::from("j1");
    let w = WorkerId::from("w1");
    let mut rest = Vec::new();
    rest.extend(e.accept(&id, &w, T0).unwrap());
    rest.extend(e.arrive(&id, &w, T0).unwrap());
    rest.extend(e.complete(&id, &w, T0).unwrap());
    let n = notices(&rest);
    let types: Vec<&str> = n.iter().map(|(_, n)| n.event_type.as_str()).collect();
    assert_eq!(types, ["job.accepted", "job.arrived", "job.completed"]);
    assert!(n
        .iter()
        .flat_map(|(_, n)| &n.deliveries)
        .all(|d| d.user.as_deref() != Some("w1")));
    let done: Vec<_> = n[2]
        .1
        .deliveries
        .iter()
        .filter_map(|d| d.endpoint.as_deref())
        .collect();
    assert_eq!(done, ["all", "done"]);
}

#[test]
fn webhooks_are_checked_disabled_and_removed() {
    let e = engine_with_worker();
    e.add_webhook(hook("a", &["*"]), T0).unwrap();
    assert_eq!(
        e.add_webhook(hook("a", &["*"]), T0),
        Err(EngineError::Conflict("webhook id taken"))
    );
    assert_eq!(
        e.remove_webhook("nope", T0),
        Err(EngineError::NotFound("webhook not found"))
    );
    assert_eq!(e.disable_webhook("a", T0).unwrap().len(), 1);
    assert!(e.disable_webhook("a", T0).unwrap().is_empty(), "once");
    assert!(e.webhook("a").unwrap().disabled);
    assert!(
        notices(&create(&e, "j1")).is_empty(),
        "a disabled endpoint hears nothing"
    );
    e.remove_webhook("a", T0).unwrap();
    assert!(e.webhooks().is_empty());
    for i in 0..MAX_WEBHOOKS {
        e.add_webhook(hook(&format!("h{i}"), &["*"]), T0).unwrap();
    }
    assert_eq!(
        e.add_webhook(hook("one-more", &["*"]), T0),
        Err(EngineError::Conflict("too many webhooks"))
    );
}

#[test]
fn preferences_and_endpoints_survive_snapshot_and_replay() {
    let e = engine_with_worker();
    let mut log = Vec::new();
    log.extend(e.add_webhook(hook("a", &["job.created"]), T0).unwrap());
    let p = NotifyPrefs {
        email: Some("x@example.com".into()),
        ..Default::default()
    };
    log.extend(e.set_notify_prefs("r1", p.clone(), T0).unwrap());
    let snap = e.snapshot();
    let bytes = rmp_serde::to_vec(&snap).unwrap();
    let back: Snapshot = rmp_serde::from_slice(&bytes).unwrap();
    let restored = Engine::restore(EngineConfig::default(), &back).unwrap();
    assert_eq!(restored.notify_prefs("r1"), p);
    assert_eq!(restored.webhooks(), e.webhooks());
    // Replaying the events on an engine that never saw them gives the same.
    let fresh = engine_with_worker();
    let start = fresh.last_seq();
    let shifted: Vec<Event> = log
        .iter()
        .enumerate()
        .map(|(i, ev)| Event {
            seq: start + 1 + i as u64,
            ..ev.clone()
        })
        .collect();
    fresh.replay(&shifted).unwrap();
    assert_eq!(fresh.notify_prefs("r1"), p);
    assert_eq!(fresh.webhooks(), e.webhooks());
    // Forgetting: all-empty preferences are not kept.
    e.set_notify_prefs("r1", NotifyPrefs::default(), T0)
        .unwrap();
    assert!(e.snapshot().notify.prefs.is_empty());
}
