//! Ratings and payments on the engine: who may, when, once; payments by
//! provider reference; an archived job comes back for them; replay.

use super::*;
use crate::{Engine, EngineConfig, NewJob, Skill, WorkerId};

const T0: Millis = Millis(1_800_000_000_000);

fn done_job(e: &Engine) -> JobId {
    let w = WorkerId::from("w");
    e.register_worker(&w, &[Skill::new("plumbing").unwrap()], T0)
        .unwrap();
    e.set_connected(&w, true, T0).unwrap();
    e.set_available(&w, true, T0).unwrap();
    e.update_position(&w, 48.851, 2.35, T0).unwrap();
    let id = JobId::from("j1");
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
            T0,
        )
        .unwrap();
    assert!(p.created);
    assert_eq!(p.receipt.job.paid_cents(), 0);
    let p = e
        .record_payment(
            payment("pay2", &id, PaymentStatus::Succeeded, "pi_1"),
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
