//! The stock ledger against a plain model, reorder tasks, and jobs that
//! need parts: matched to a worker who carries them, reserved at accept,
//! consumed at completion, released on cancel — and replay giving the same
//! state.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::event::Event;
use crate::job::{JobStatus, Step};
use crate::{Engine, EngineConfig, NewJob, ResidentId, Skill};

const T0: Millis = Millis(1_800_000_000_000);

fn part(id: &str, sku: &str, rp: i64, rq: i64) -> Part {
    Part {
        id: id.into(),
        sku: sku.into(),
        name: format!("Part {sku}"),
        fits: vec!["combi-24".into()],
        unit_cost_cents: 1250,
        supplier: "Acme".into(),
        reorder_point: rp,
        reorder_qty: rq,
        created_at: T0,
    }
}

fn mv(
    id: &str,
    p: &str,
    from: Option<&str>,
    to: Option<&str>,
    qty: i64,
    kind: MoveKind,
) -> Movement {
    Movement {
        id: id.into(),
        part_id: p.into(),
        from: from.map(Into::into),
        to: to.map(Into::into),
        qty,
        kind,
        job_id: None,
        by: "ops1".into(),
        at: T0,
        note: String::new(),
        from_available_after: None,
    }
}

fn tasks_made(ev: &[Event]) -> Vec<ReorderTask> {
    ev.iter()
        .filter_map(|e| match &e.kind {
            EventKind::ReorderTaskCreated { task } => Some(task.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn skus_are_unique_and_edits_keep_history() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    e.create_part(part("p1", "VALVE-1", 2, 10), T0).unwrap();
    assert_eq!(
        e.create_part(part("p2", "valve-1", 2, 10), T0),
        Err(EngineError::SkuTaken)
    );
    e.move_stock(
        mv("m1", "p1", None, Some("depot:main"), 5, MoveKind::Receive),
        T0,
    )
    .unwrap();
    let patch = PartPatch {
        name: Some("Valve, brass".into()),
        ..Default::default()
    };
    e.update_part("p1", patch, T0).unwrap();
    assert_eq!(e.part("p1").unwrap().name, "Valve, brass");
    assert_eq!(e.jobs.lock().stock.bal("p1", "depot:main").on_hand, 5);
}

#[test]
fn insufficient_stock_changes_nothing_and_reorders_once() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    e.create_part(part("p1", "F-1", 3, 10), T0).unwrap();
    e.move_stock(
        mv("m1", "p1", None, Some("depot:main"), 5, MoveKind::Receive),
        T0,
    )
    .unwrap();
    let before = e.snapshot().stock;
    assert_eq!(
        e.move_stock(
            mv(
                "m2",
                "p1",
                Some("depot:main"),
                Some("van:w1"),
                6,
                MoveKind::Transfer
            ),
            T0
        ),
        Err(EngineError::InsufficientStock)
    );
    assert_eq!(e.snapshot().stock, before, "nothing changed");
    // Down to 3 (the reorder point): one task, qty max(10, 3 − 3 + 1).
    let ev = e
        .move_stock(
            mv(
                "m3",
                "p1",
                Some("depot:main"),
                Some("van:w1"),
                2,
                MoveKind::Transfer,
            ),
            T0,
        )
        .unwrap();
    let t = tasks_made(&ev);
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].location.as_str(), t[0].qty), ("depot:main", 10));
    // Lower still: no second task while one is open; the check agrees.
    let ev = e
        .move_stock(
            mv("m4", "p1", Some("depot:main"), None, 3, MoveKind::Consume),
            T0,
        )
        .unwrap();
    assert!(tasks_made(&ev).is_empty());
    // The check finds the van that received 2 (≤ the point 3), not the
    // depot again.
    let t = tasks_made(&e.reorder_check(T0).unwrap());
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].id.as_str(), t[0].location.as_str()),
        ("rt_2", "van:w1")
    );
    assert!(tasks_made(&e.reorder_check(T0).unwrap()).is_empty());
    // Received: the quantity comes in, the task is done; a rule raising the
    // van's point makes a task for the van.
    let ev = e
        .reorder_step("rt_1", ReorderStep::Received, "ops1", None, T0)
        .unwrap();
    assert!(ev.iter().any(|x| matches!(&x.kind, EventKind::StockMoved { movement } if movement.qty == 10 && movement.kind == MoveKind::Receive)));
    assert_eq!(e.jobs.lock().stock.bal("p1", "depot:main").on_hand, 10);
    let ev = e.set_stock_rule("p1", "depot:main", 12, 2, T0).unwrap();
    let t = tasks_made(&ev);
    assert_eq!((t[0].location.as_str(), t[0].qty), ("depot:main", 3));
    // The van's task (rt_2) filled from the depot: a transfer.
    let ev = e
        .reorder_step(
            "rt_2",
            ReorderStep::Received,
            "ops1",
            Some("depot:main".into()),
            T0,
        )
        .unwrap();
    assert!(ev
        .iter()
        .any(|x| matches!(&x.kind, EventKind::StockMoved { movement }
        if movement.kind == MoveKind::Transfer && movement.to.as_deref() == Some("van:w1"))));
    assert_eq!(
        e.reorder_step("rt_1", ReorderStep::Cancel, "ops1", None, T0),
        Err(EngineError::Conflict(
            "the task is not in a state for that step"
        ))
    );
}

fn worker(e: &Engine, id: &str, lat: f64) {
    let w = WorkerId::from(id);
    e.register_worker(&w, &[Skill::new("plumbing").unwrap()], T0)
        .unwrap();
    e.set_connected(&w, true, T0).unwrap();
    e.set_available(&w, true, T0).unwrap();
    e.update_position(&w, lat, 2.35, T0).unwrap();
}

fn parts_opts(parts: Vec<PartLine>) -> crate::jobs::JobOptions {
    crate::jobs::JobOptions {
        parts,
        ..Default::default()
    }
}

fn job(id: &str) -> NewJob {
    NewJob {
        id: JobId::from(id),
        resident_id: ResidentId::from("r1"),
        lat: 48.85,
        lng: 2.35,
        skill: Skill::new("plumbing").unwrap(),
        description: String::new(),
    }
}

#[test]
fn a_parts_job_goes_to_the_nearest_worker_who_carries_them() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let mut all = Vec::new();
    all.extend(e.create_part(part("p1", "PUMP", 0, 1), T0).unwrap());
    worker(&e, "near", 48.851);
    worker(&e, "far", 48.86);
    all.extend(
        e.move_stock(
            mv("m1", "p1", None, Some("van:far"), 2, MoveKind::Receive),
            T0,
        )
        .unwrap(),
    );
    all.extend(
        e.move_stock(
            mv("m2", "p1", None, Some("van:near"), 1, MoveKind::Receive),
            T0,
        )
        .unwrap(),
    );
    let lines = vec![PartLine {
        part_id: "p1".into(),
        qty: 2,
    }];
    let r = e
        .create_job_with(job("j1"), parts_opts(lines.clone()), T0)
        .unwrap();
    assert_eq!(
        r.job.worker_id,
        Some(WorkerId::from("far")),
        "near has only 1"
    );
    all.extend(r.events);
    let far = WorkerId::from("far");
    let r = e
        .worker_step_receipt(&JobId::from("j1"), &far, Step::Accept, T0)
        .unwrap();
    all.extend(r.events);
    let b = e.jobs.lock().stock.bal("p1", "van:far");
    assert_eq!((b.on_hand, b.reserved, b.available()), (2, 2, 0));
    // Its van's stock is held: a second such job finds nobody.
    let r = e
        .create_job_with(job("j2"), parts_opts(lines.clone()), T0)
        .unwrap();
    assert_eq!(r.job.status, JobStatus::Searching);
    all.extend(r.events);
    all.extend(e.arrive(&JobId::from("j1"), &far, T0).unwrap());
    let ev = e
        .complete(&JobId::from("j1"), &far, T0.plus_secs(60))
        .unwrap();
    let consumed: Vec<&Movement> = ev
        .iter()
        .filter_map(|x| match &x.kind {
            EventKind::StockMoved { movement } => Some(&**movement),
            _ => None,
        })
        .collect();
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].job_id, Some(JobId::from("j1")));
    assert_eq!((consumed[0].kind, consumed[0].qty), (MoveKind::Consume, 2));
    assert_eq!(consumed[0].from_available_after, Some(0));
    all.extend(ev);
    let b = e.jobs.lock().stock.bal("p1", "van:far");
    assert_eq!((b.on_hand, b.reserved), (0, 0));
    // Cancel after accept releases: stock a van, give it j3, cancel.
    all.extend(
        e.move_stock(
            mv("m3", "p1", None, Some("van:near"), 1, MoveKind::Receive),
            T0,
        )
        .unwrap(),
    );
    for (w, lat) in [("near", 48.851), ("far", 48.86)] {
        e.update_position(&WorkerId::from(w), lat, 2.35, T0.plus_secs(61))
            .unwrap();
    }
    let ev = e.tick(T0.plus_secs(61));
    all.extend(ev);
    let j2 = e.job(&JobId::from("j2")).unwrap();
    assert_eq!(j2.worker_id, Some(WorkerId::from("near")), "now near has 2");
    let near = WorkerId::from("near");
    all.extend(
        e.accept(&JobId::from("j2"), &near, T0.plus_secs(61))
            .unwrap(),
    );
    assert_eq!(e.jobs.lock().stock.bal("p1", "van:near").reserved, 2);
    all.extend(
        e.cancel(&JobId::from("j2"), None, T0.plus_secs(62))
            .unwrap(),
    );
    assert_eq!(e.jobs.lock().stock.bal("p1", "van:near").reserved, 0);
    // Replaying the domain's events over the same workers gives the same
    // stock; so does a snapshot.
    let fresh = Engine::new(EngineConfig::default()).unwrap();
    for ev in &all {
        if let k @ (EventKind::PartCreated { .. }
        | EventKind::StockMoved { .. }
        | EventKind::ReorderTaskCreated { .. }
        | EventKind::PartsReserved { .. }
        | EventKind::PartsReleased { .. }) = &ev.kind
        {
            let mut t = fresh.jobs.lock();
            t.stock.check(k).unwrap();
            t.stock.apply(k, ev.at);
        }
    }
    assert_eq!(fresh.snapshot().stock, e.snapshot().stock);
    let back = Engine::restore(EngineConfig::default(), &e.snapshot()).unwrap();
    assert_eq!(back.snapshot().stock, e.snapshot().stock);
}

#[test]
fn an_accept_without_the_parts_is_refused_and_changes_nothing() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    e.create_part(part("p1", "PUMP", 0, 1), T0).unwrap();
    worker(&e, "w", 48.851);
    e.move_stock(
        mv("m1", "p1", None, Some("van:w"), 1, MoveKind::Receive),
        T0,
    )
    .unwrap();
    let lines = vec![PartLine {
        part_id: "p1".into(),
        qty: 1,
    }];
    let r = e.create_job_with(job("j1"), parts_opts(lines), T0).unwrap();
    let w = WorkerId::from("w");
    assert_eq!(r.job.worker_id, Some(w.clone()));
    // Used elsewhere between the offer and the accept.
    e.move_stock(
        mv("m2", "p1", Some("van:w"), None, 1, MoveKind::Consume),
        T0,
    )
    .unwrap();
    let before = e.snapshot();
    assert_eq!(
        e.accept(&JobId::from("j1"), &w, T0),
        Err(EngineError::InsufficientStock)
    );
    assert_eq!(e.snapshot(), before);
}

/// One random operation on the ledger.
#[derive(Debug, Clone)]
enum LedgerOp {
    Move(u8, u8, i64, u8),
    Reserve(u8, i64),
    Release,
}

fn loc(i: u8) -> Option<String> {
    match i % 4 {
        0 => None,
        1 => Some("depot:a".into()),
        2 => Some("depot:b".into()),
        _ => Some("van:w".into()),
    }
}

proptest! {
    /// Balances always equal what the accepted movements add up to, never
    /// go below zero, and a refused movement changes nothing — checked
    /// against a plain map after every step.
    #[test]
    fn balances_are_the_sum_of_the_ledger(ops in proptest::collection::vec(
        prop_oneof![
            (0u8..4, 0u8..4, 1i64..6, 0u8..5).prop_map(|(a, b, q, k)| LedgerOp::Move(a, b, q, k)),
            (0u8..2, 1i64..4).prop_map(|(p, q)| LedgerOp::Reserve(p, q)),
            Just(LedgerOp::Release),
        ], 1..60)) {
        let mut st = StockState::default();
        for (i, p) in ["pa", "pb"].iter().enumerate() {
            let kind = EventKind::PartCreated { part: part(p, &format!("S{i}"), 0, 1) };
            st.check(&kind).unwrap();
            st.apply(&kind, T0);
        }
        let mut model: HashMap<(String, String), (i64, i64)> = HashMap::new();
        let mut held: Option<(String, i64)> = None;
        for (n, op) in ops.into_iter().enumerate() {
            let kind = match &op {
                LedgerOp::Move(a, b, q, k) => {
                    let kind = [MoveKind::Receive, MoveKind::Transfer, MoveKind::Consume, MoveKind::Return, MoveKind::Adjust][*k as usize];
                    let p = if n % 2 == 0 { "pa" } else { "pb" };
                    let m = Movement {
                        id: format!("m{n}"), part_id: p.into(), from: loc(*a), to: loc(*b), qty: *q, kind,
                        job_id: None, by: "x".into(), at: T0, note: String::new(), from_available_after: None,
                    };
                    EventKind::StockMoved { movement: Box::new(m) }
                }
                LedgerOp::Reserve(p, q) => EventKind::PartsReserved {
                    job_id: JobId::from(format!("j{n}")),
                    location: "van:w".into(),
                    lines: vec![PartLine { part_id: ["pa", "pb"][*p as usize].into(), qty: *q }],
                },
                LedgerOp::Release => match &held {
                    Some((j, _)) => EventKind::PartsReleased { job_id: JobId::from(j.as_str()) },
                    None => continue,
                },
            };
            if matches!(kind, EventKind::PartsReserved { .. }) && held.is_some() {
                continue; // one job at a time holds the van's parts
            }
            let before = st.clone();
            match st.check(&kind) {
                Ok(()) => {
                    st.apply(&kind, T0);
                    match &kind {
                        EventKind::StockMoved { movement: m } => {
                            if let Some(f) = &m.from {
                                model.entry((m.part_id.clone(), f.clone())).or_default().0 -= m.qty;
                            }
                            if let Some(t) = &m.to {
                                model.entry((m.part_id.clone(), t.clone())).or_default().0 += m.qty;
                            }
                        }
                        EventKind::PartsReserved { job_id, lines, .. } => {
                            model.entry((lines[0].part_id.clone(), "van:w".into())).or_default().1 += lines[0].qty;
                            held = Some((job_id.as_str().to_owned(), lines[0].qty));
                        }
                        EventKind::PartsReleased { .. } => {
                            let (j, _) = held.take().unwrap();
                            let r = &before.reservations[&JobId::from(j.as_str())];
                            model.entry((r.lines[0].part_id.clone(), "van:w".into())).or_default().1 -= r.lines[0].qty;
                        }
                        _ => {}
                    }
                }
                Err(_) => prop_assert_eq!(&st, &before, "a refused change leaves no trace"),
            }
            for ((p, l), (on_hand, reserved)) in &model {
                let b = st.bal(p, l);
                prop_assert_eq!((b.on_hand, b.reserved), (*on_hand, *reserved));
                prop_assert!(b.available() >= 0, "{p} at {l}: {b:?}");
            }
        }
    }
}
