//! Ratings and payments on the engine: who may, when, once; payments by
//! provider reference; an archived job comes back for them; replay.

use super::*;
use crate::{Engine, EngineConfig, NewJob, Skill, WorkerId};

const T0: Millis = Millis(1_800_000_000_000);

fn done_job(e: &Engine) -> JobId {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let w = WorkerId::from(format!("w{n}").as_str());
    e.register_worker(&w, &[Skill::new("plumbing").unwrap()], T0)
        .unwrap();
    e.set_connected(&w, true, T0).unwrap();
    e.set_available(&w, true, T0).unwrap();
    e.update_position(&w, 48.851, 2.35, T0).unwrap();
    let id = JobId::from(format!("j{n}").as_str());
    e.create_job(
        NewJob {
            id: id.clone(),
            resident_id: ResidentId::from("r1"),
            lat: 48.85,
            lng: 2.35,
            skill: Skill::new("plumbing").unwrap(),
            description: String::new(),
        },
        T0,
    )
    .unwrap();
    e.accept(&id, &w, T0).unwrap();
    e.arrive(&id, &w, T0).unwrap();
    e.complete(&id, &w, T0.plus_secs(600)).unwrap();
    // Out of the way of the next test job.
    e.set_available(&w, false, T0.plus_secs(600)).unwrap();
    id
}

fn payment(id: &str, job: &JobId, status: PaymentStatus, r: &str) -> Payment {
    Payment {
        id: id.into(),
        job_id: job.clone(),
        amount_cents: 2000,
        status,
        provider_ref: r.into(),
        created_at: T0,
        updated_at: T0,
        calls: Vec::new(),
    }
}

#[test]
fn a_completed_job_is_rated_once_by_its_resident() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let id = done_job(&e);
    let r1 = ResidentId::from("r1");
    assert_eq!(
        e.rate(&id, &ResidentId::from("r2"), 5, None, None, T0)
            .unwrap_err(),
        EngineError::JobNotFound
    );
    let r = e
        .rate(&id, &r1, 4, Some("quick and tidy".into()), None, T0)
        .unwrap();
    assert_eq!(r.job.rating.as_ref().unwrap().stars, 4);
    assert_eq!(
        e.rate(&id, &r1, 5, None, None, T0).unwrap_err(),
        EngineError::AlreadyRated
    );
    assert!(matches!(
        e.rate(&id, &r1, 6, None, None, T0),
        Err(EngineError::AlreadyRated | EngineError::InvalidInput { .. })
    ));
}

#[test]
fn payments_update_by_provider_ref_and_follow_an_archived_job() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let id = done_job(&e);
    let p = e
        .record_payment(
            payment("pay1", &id, PaymentStatus::Pending, "pi_1"),
            None,
            None,
            T0,
        )
        .unwrap();
    assert!(p.created);
    assert_eq!(p.receipt.job.paid_cents(), 0);
    let p = e
        .record_payment(
            payment("pay2", &id, PaymentStatus::Succeeded, "pi_1"),
            None,
            None,
            T0,
        )
        .unwrap();
    assert!(!p.created, "the same provider_ref updates");
    assert_eq!(p.payment.id, "pay1");
    assert_eq!(p.receipt.job.payments.len(), 1);
    assert_eq!(p.receipt.job.paid_cents(), 2000);
    // Archived, then refunded: it comes back with the update.
    let job = e.job(&id).unwrap();
    e.archive(std::slice::from_ref(&id), T0.plus_secs(7200))
        .unwrap();
    assert!(e.job(&id).is_none());
    let p = e
        .record_payment(
            payment("pay3", &id, PaymentStatus::Refunded, "pi_1"),
            None,
            Some(job),
            T0.plus_secs(7300),
        )
        .unwrap();
    assert_eq!(
        p.receipt.job.paid_cents(),
        0,
        "a refunded payment no longer counts"
    );
    assert!(matches!(
        p.receipt.events[0].kind,
        EventKind::JobRestored { .. }
    ));
    let back = Engine::restore(EngineConfig::default(), &e.snapshot()).unwrap();
    assert_eq!(back.job(&id), e.job(&id));
}

#[test]
fn statuses_only_move_forward_and_every_pair_is_checked() {
    use PaymentStatus::*;
    for from in PaymentStatus::ALL {
        for to in PaymentStatus::ALL {
            let e = Engine::new(EngineConfig::default()).unwrap();
            let id = done_job(&e);
            e.record_payment(payment("p", &id, from, "pi_x"), None, None, T0)
                .unwrap();
            let r = e.record_payment(payment("q", &id, to, "pi_x"), None, None, T0.plus_secs(1));
            let forward = matches!(
                (from, to),
                (Pending, Succeeded | Failed) | (Failed, Succeeded) | (Succeeded, Refunded)
            );
            match r {
                Ok(r) if from == to => {
                    assert!(
                        r.receipt.events.is_empty(),
                        "{from:?} again changes nothing"
                    );
                    assert_eq!(r.payment.status, from);
                }
                Ok(r) => {
                    assert!(forward, "{from:?} → {to:?} was allowed");
                    assert_eq!(r.payment.status, to);
                    assert_eq!(r.payment.calls.len(), 2);
                }
                Err(err) => {
                    assert!(!forward && from != to, "{from:?} → {to:?}: {err}");
                    assert!(matches!(err, EngineError::PaymentTransition { .. }));
                    assert_eq!(
                        e.job(&id).unwrap().payments[0].status,
                        from,
                        "nothing changed"
                    );
                }
            }
        }
    }
}

#[test]
fn a_replayed_webhook_id_changes_nothing_and_amounts_and_refs_are_fixed() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let id = done_job(&e);
    let ok = |r: Result<PaymentReceipt, EngineError>| r.unwrap();
    let p = ok(e.record_payment(
        payment("p", &id, PaymentStatus::Succeeded, "pi_1"),
        Some("msg_1".into()),
        None,
        T0,
    ));
    assert_eq!(p.receipt.job.paid_cents(), 2000);
    ok(e.record_payment(
        payment("p", &id, PaymentStatus::Refunded, "pi_1"),
        Some("msg_2".into()),
        None,
        T0.plus_secs(1),
    ));
    // The first call again, byte for byte: answered as it is.
    let again = ok(e.record_payment(
        payment("p", &id, PaymentStatus::Succeeded, "pi_1"),
        Some("msg_1".into()),
        None,
        T0.plus_secs(2),
    ));
    assert!(again.receipt.events.is_empty());
    assert_eq!(again.payment.status, PaymentStatus::Refunded);
    assert_eq!(e.job(&id).unwrap().paid_cents(), 0);
    // The same status under a new id: backwards is refused.
    assert!(matches!(
        e.record_payment(
            payment("p", &id, PaymentStatus::Succeeded, "pi_1"),
            Some("msg_3".into()),
            None,
            T0.plus_secs(3),
        ),
        Err(EngineError::PaymentTransition { .. })
    ));
    let calls = &e.job(&id).unwrap().payments[0].calls;
    let ids: Vec<_> = calls.iter().map(|c| c.webhook_id.as_deref()).collect();
    assert_eq!(ids, [Some("msg_1"), Some("msg_2")], "the ledger, in order");
    // Another amount for the same ref.
    let mut other = payment("p2", &id, PaymentStatus::Pending, "pi_2");
    ok(e.record_payment(other.clone(), None, None, T0));
    other.amount_cents += 1;
    other.status = PaymentStatus::Succeeded;
    assert!(matches!(
        e.record_payment(other, None, None, T0),
        Err(EngineError::Conflict(_))
    ));
    // The same ref for another job.
    let id2 = done_job(&e);
    assert!(matches!(
        e.record_payment(
            payment("p3", &id2, PaymentStatus::Pending, "pi_1"),
            None,
            None,
            T0
        ),
        Err(EngineError::Conflict(_))
    ));
    // It follows its job through a snapshot.
    let back = Engine::restore(EngineConfig::default(), &e.snapshot()).unwrap();
    assert!(matches!(
        back.record_payment(
            payment("p3", &id2, PaymentStatus::Pending, "pi_1"),
            None,
            None,
            T0
        ),
        Err(EngineError::Conflict(_))
    ));
}
