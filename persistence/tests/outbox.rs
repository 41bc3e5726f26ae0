//! The embedded outbox: a notification's deliveries are written with the
//! event that raised it, survive a reopen, are claimed, recorded and pruned;
//! entries whose event was lost with the log's tail are removed at open.

mod common;

use common::*;
use engine::notify::outbox::{DeliveryRecord, DeliveryStatus, Outcome};
use engine::notify::schedule::DELAYS;
use engine::*;
use persistence::{SledStore, StoreOptions};

const T0: Millis = Millis(1_700_000_000_000);

fn listen(e: &Engine) -> Vec<Event> {
    let mut out = e
        .add_webhook(
            Webhook {
                id: "wh1".into(),
                url: "https://example.com/hook".into(),
                events: vec!["*".into()],
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                disabled: false,
            },
            T0,
        )
        .unwrap();
    let prefs = NotifyPrefs {
        email: Some("r@example.com".into()),
        ..Default::default()
    };
    out.extend(e.set_notify_prefs("r", prefs, T0).unwrap());
    out
}

#[test]
fn deliveries_are_written_with_their_event_and_move_through_the_outbox() {
    let dir = temp_dir("outbox");
    let opts = StoreOptions::default();
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts.clone(), T0).unwrap();
    store.append(fleet(&e, 2, T0)).unwrap();
    store.append(listen(&e)).unwrap();
    let ev = e.create_job(new_job("j1", 1), T0).unwrap();
    store.append(ev).unwrap();
    // job.created and job.offered, each to the webhook and the resident's e-mail.
    let pending = store
        .outbox()
        .list(Some(DeliveryStatus::Pending), None, 100)
        .unwrap();
    assert_eq!(pending.len(), 4, "{pending:?}");
    assert_eq!(store.outbox().pending_len(), 4);
    let hooks = store.outbox().list(None, Some("wh1"), 100).unwrap();
    assert_eq!(hooks.len(), 2);

    // Durable with the log: a reopen keeps them.
    store.close();
    drop((store, e));
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts.clone(), T0).unwrap();
    assert_eq!(store.outbox().pending_len(), 4);
    assert_eq!(e.webhooks().len(), 1);

    // Claimed: not due again until the claim lapses.
    let later = Millis(T0.0 + 60_000);
    let taken = store.outbox().take_due(T0, later, 3).unwrap();
    assert_eq!(taken.len(), 3);
    assert_eq!(store.outbox().take_due(T0, later, 10).unwrap().len(), 1);
    assert!(store.outbox().take_due(T0, later, 10).unwrap().is_empty());
    assert_eq!(store.outbox().take_due(later, later, 10).unwrap().len(), 4);

    // Outcomes recorded: delivered, and one retried on the schedule.
    let mut done: DeliveryRecord = taken[0].clone();
    done.record(
        Outcome::Delivered { status: Some(200) },
        T0,
        5,
        0.0,
        &DELAYS,
    );
    store.outbox().save(&done, false).unwrap();
    let mut again = taken[1].clone();
    let retry = Outcome::Retry {
        status: Some(500),
        error: "HTTP 500".into(),
        retry_after: None,
    };
    again.record(retry, T0, 5, 0.0, &DELAYS);
    store.outbox().save(&again, true).unwrap();
    assert_eq!(again.next_at, Millis(T0.0 + 5_000));
    let delivered = store
        .outbox()
        .list(Some(DeliveryStatus::Delivered), None, 10)
        .unwrap();
    assert_eq!(delivered, vec![done.clone()]);
    assert_eq!(store.outbox().get(&again.id).unwrap().unwrap(), again);
    assert_eq!(store.outbox().pending_len(), 3);

    // Ended entries are pruned after the retention; pending ones never.
    assert_eq!(store.outbox().prune(Millis(T0.0 + 1), 100).unwrap(), 1);
    assert!(store.outbox().get(&done.id).unwrap().is_none());
    assert_eq!(store.outbox().pending_len(), 3);
}

#[test]
fn deliveries_of_events_lost_with_the_log_tail_are_removed_at_open() {
    let dir = temp_dir("outbox-phantom");
    let opts = StoreOptions::default();
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts.clone(), T0).unwrap();
    store.append(fleet(&e, 1, T0)).unwrap();
    store.append(listen(&e)).unwrap();
    let last = e.last_seq();
    // As if the writer had committed the outbox and then died before the
    // log: entries for an event after the last durable one.
    let job = e.create_job_receipt(new_job("ghost", 1), T0).unwrap().job;
    let notice = Notice {
        id: format!("ntf_{}", last + 50),
        event_type: "job.created".into(),
        data: NoticeData::Job { job: Box::new(job) },
        deliveries: vec![Delivery {
            id: format!("ntf_{}.0", last + 50),
            channel: Channel::Email,
            target: "r@example.com".into(),
            endpoint: None,
            user: Some("r".into()),
        }],
    };
    store
        .outbox()
        .put_new(DeliveryRecord::from_notice(&notice, T0));
    store.outbox().flush().unwrap();
    // The real events of "ghost" are never made durable: a crash.
    let before = store.outbox().pending_len();
    assert!(before >= 1);
    drop((store, e)); // no close: the writer's tail is not flushed
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts, T0).unwrap();
    let left = store.outbox().list(None, None, 100).unwrap();
    assert!(
        left.iter()
            .all(|r| persistence::outbox::seq_of(&r.id) <= e.last_seq()),
        "phantom entries kept: {left:?}"
    );
    assert!(store
        .outbox()
        .get(&format!("ntf_{}.0", last + 50))
        .unwrap()
        .is_none());
}

#[test]
fn claims_of_a_dead_process_are_released_at_open() {
    let dir = temp_dir("outbox-claims");
    let opts = StoreOptions::default();
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts.clone(), T0).unwrap();
    store.append(fleet(&e, 1, T0)).unwrap();
    store.append(listen(&e)).unwrap();
    store
        .append(e.create_job(new_job("j1", 1), T0).unwrap())
        .unwrap();
    let far = Millis(T0.0 + 3_600_000);
    let taken = store.outbox().take_due(T0, far, 100).unwrap();
    assert!(!taken.is_empty());
    assert!(
        store.outbox().take_due(T0, far, 100).unwrap().is_empty(),
        "claimed"
    );
    drop((store, e)); // dies with its deliveries in flight
    let (store, _, _) = SledStore::open(&dir, EngineConfig::default(), opts, T0).unwrap();
    let again = store.outbox().take_due(T0, far, 100).unwrap();
    assert_eq!(
        again.len(),
        taken.len(),
        "due again at once, not after the claim"
    );
}

/// New entries are written without an fsync of their own: the log holds
/// their events, and recovery writes them again from it. Here the outbox
/// file is lost entirely after the writes: every entry comes back.
#[test]
fn entries_are_written_again_from_the_log_at_recovery() {
    let dir = temp_dir("outbox-rederive");
    let opts = StoreOptions::default();
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts.clone(), T0).unwrap();
    store.append(fleet(&e, 1, T0)).unwrap();
    store.append(listen(&e)).unwrap();
    for k in 0..3 {
        store
            .append(e.create_job(new_job(&format!("j{k}"), k), T0).unwrap())
            .unwrap();
    }
    let before = store.outbox().list(None, None, 100).unwrap();
    assert!(before.len() >= 6, "{before:?}");
    drop((store, e)); // no close: no final snapshot, the log keeps every event
    std::fs::remove_file(dir.join("outbox.redb")).unwrap();
    let (store, _, _) = SledStore::open(&dir, EngineConfig::default(), opts, T0).unwrap();
    let after = store.outbox().list(None, None, 100).unwrap();
    let ids = |v: &[DeliveryRecord]| {
        let mut i: Vec<String> = v.iter().map(|r| r.id.clone()).collect();
        i.sort();
        i
    };
    assert_eq!(ids(&after), ids(&before));
}
