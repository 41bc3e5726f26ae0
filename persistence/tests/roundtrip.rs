//! Log + snapshot + replay rebuilds exactly the engine that produced them,
//! and a corrupt or torn tail is dropped, never fatal.

mod common;

use common::*;
use engine::*;
use persistence::{Account, Role, SledStore, StoreError, StoreOptions};
use proptest::prelude::*;

fn opts() -> StoreOptions {
    StoreOptions {
        snapshot_every_events: 0,
        ..StoreOptions::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create,
    Act(usize, u8),
    Cancel(usize),
    Tick(u16),
    Move(usize, i8),
    Snapshot,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Create),
        4 => (0usize..6, 0u8..4).prop_map(|(w, a)| Op::Act(w, a)),
        1 => (0usize..30).prop_map(Op::Cancel),
        2 => (1u16..40).prop_map(Op::Tick),
        2 => (0usize..6, any::<i8>()).prop_map(|(w, d)| Op::Move(w, d)),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Reopen),
    ]
}

fn comparable(e: &Engine) -> (u64, Vec<Job>, Vec<WorkerId>) {
    let s = e.snapshot();
    (s.last_seq, s.jobs, e.reserved_workers())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn store_rebuilds_the_engine(ops in prop::collection::vec(op(), 1..60)) {
        let dir = temp_dir("roundtrip");
        let cfg = EngineConfig { offer_timeout_s: 10, search_timeout_s: 50, ..EngineConfig::default() };
        let mut now = Millis(1_700_000_000_000);
        let (mut store, mut e, _) = SledStore::open(&dir, cfg.clone(), opts(), now).unwrap();
        store.append(fleet(&e, 6, now)).unwrap();
        let mut jobs = 0u64;
        for op in ops {
            let ev = match op {
                Op::Create => {
                    jobs += 1;
                    e.create_job(new_job(&format!("j{jobs}"), jobs), now).unwrap()
                }
                Op::Act(w, a) => match e.current_job(&wid(w)) {
                    None => vec![],
                    Some(j) => match a {
                        0 => e.accept(&j.id, &wid(w), now),
                        1 => e.decline(&j.id, &wid(w), now),
                        2 => e.arrive(&j.id, &wid(w), now),
                        _ => e.complete(&j.id, &wid(w), now),
                    }.unwrap_or_default(),
                },
                Op::Cancel(k) => e.cancel(&JobId::from(format!("j{k}")), None, now).unwrap_or_default(),
                Op::Tick(s) => {
                    now = now.plus_secs(s as u64);
                    e.tick(now)
                }
                Op::Move(w, d) => e.update_position(&wid(w), LAT + d as f64 * 1e-4, LNG, now).unwrap(),
                Op::Snapshot => {
                    store.snapshot(&e).unwrap();
                    vec![]
                }
                Op::Reopen => {
                    drop(store);
                    // What the restart does to the live state: open offers go back to searching.
                    e.requeue_offers(now);
                    let before = comparable(&e);
                    let (s2, e2, report) = SledStore::open(&dir, cfg.clone(), opts(), now).unwrap();
                    prop_assert_eq!(report.dropped, 0);
                    prop_assert_eq!(comparable(&e2), before);
                    store = s2;
                    e = e2;
                    // Presence is gone after a restart: the apps reconnect.
                    let mut ev = Vec::new();
                    for i in 0..6 {
                        ev.extend(e.set_connected(&wid(i), true, now).unwrap());
                        ev.extend(e.update_position(&wid(i), LAT, LNG, now).unwrap());
                    }
                    ev
                }
            };
            store.append(ev).unwrap();
        }
        drop(store);
        e.requeue_offers(now);
        let (_s, e2, _) = SledStore::open(&dir, cfg, opts(), now).unwrap();
        prop_assert_eq!(comparable(&e2), comparable(&e));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn logged_engine(dir: &std::path::Path, jobs: u64) -> Engine {
    let now = Millis(1_700_000_000_000);
    let (store, e, _) = SledStore::open(dir, EngineConfig::default(), opts(), now).unwrap();
    store.append(fleet(&e, 3, now)).unwrap();
    for k in 0..jobs {
        store
            .append(e.create_job(new_job(&format!("j{k}"), k), now).unwrap())
            .unwrap();
    }
    e
}

/// The newest log epoch's database (the only one when no snapshot was taken).
fn newest_epoch(dir: &std::path::Path) -> sled::Db {
    let mut epochs: Vec<_> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    epochs.sort();
    sled::open(epochs.last().unwrap()).unwrap()
}

/// Rewrites one raw log value, as a torn write or a flipped bit would.
fn damage(dir: &std::path::Path, which: usize, f: impl Fn(&mut Vec<u8>)) {
    let db = newest_epoch(dir);
    let log: &sled::Tree = &db;
    let (k, v) = log.iter().nth(which).unwrap().unwrap();
    let mut v = v.to_vec();
    f(&mut v);
    log.insert(k, v).unwrap();
    db.flush().unwrap();
}

#[test]
fn corrupt_tail_entry_is_dropped_and_the_rest_kept() {
    let dir = temp_dir("corrupt");
    let live = logged_engine(&dir, 10);
    let entries = newest_epoch(&dir).len();
    damage(&dir, entries - 1, |v| {
        let n = v.len();
        v[n - 1] ^= 0x40;
    });
    let (_s, _e, report) = SledStore::open(
        &dir,
        EngineConfig::default(),
        opts(),
        Millis(1_700_000_000_000),
    )
    .unwrap();
    assert_eq!(report.dropped, 1);
    assert_eq!(
        report.replayed,
        live.last_seq() - 1,
        "everything before the bad entry is kept"
    );
}

#[test]
fn truncated_entry_in_the_middle_cuts_the_log_there() {
    let dir = temp_dir("truncated");
    logged_engine(&dir, 10);
    damage(&dir, 5, |v| v.truncate(3));
    let (store, e, report) = SledStore::open(
        &dir,
        EngineConfig::default(),
        opts(),
        Millis(1_700_000_000_000),
    )
    .unwrap();
    assert!(report.dropped >= 1);
    assert_eq!(report.replayed, 5, "entries 1..=5 survive");
    // The store goes on from there.
    let ev = e
        .create_job(new_job("after", 99), Millis(1_700_000_000_001))
        .unwrap();
    store.append(ev).unwrap();
    drop(store);
    let (_s, e2, _) = SledStore::open(
        &dir,
        EngineConfig::default(),
        opts(),
        Millis(1_700_000_000_002),
    )
    .unwrap();
    assert!(e2.job(&JobId::from("after")).is_some());
}

#[test]
fn snapshot_compacts_and_recovery_uses_it() {
    let dir = temp_dir("snapshot");
    let now = Millis(1_700_000_000_000);
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts(), now).unwrap();
    store.append(fleet(&e, 3, now)).unwrap();
    for k in 0..50 {
        store
            .append(e.create_job(new_job(&format!("j{k}"), k), now).unwrap())
            .unwrap();
    }
    let seq = store.snapshot(&e).unwrap();
    assert_eq!(store.log_len(), 0, "the snapshot covers the whole log");
    for k in 50..60 {
        store
            .append(e.create_job(new_job(&format!("j{k}"), k), now).unwrap())
            .unwrap();
    }
    drop(store);
    e.requeue_offers(now);
    let (_s, e2, report) = SledStore::open(&dir, EngineConfig::default(), opts(), now).unwrap();
    assert_eq!(report.snapshot_seq, Some(seq));
    assert_eq!(report.replayed, 10);
    assert_eq!(e2.snapshot().jobs, e.snapshot().jobs);
}

#[test]
fn accounts_are_durable_and_emails_unique() {
    let dir = temp_dir("accounts");
    let now = Millis(1_700_000_000_000);
    let acct = |id: &str, email: &str| Account {
        id: id.into(),
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        role: Role::Worker,
        name: "Ada".into(),
        skills: vec![Skill::new("fix").unwrap()],
        created_at: now,
    };
    {
        let (store, _, _) = SledStore::open(&dir, EngineConfig::default(), opts(), now).unwrap();
        store.create_account(acct("u1", "ada@example.com")).unwrap();
        assert_eq!(
            store.create_account(acct("u2", "ada@example.com")),
            Err(StoreError::EmailTaken)
        );
        assert_eq!(
            store.create_account(acct("u1", "other@example.com")),
            Err(StoreError::Conflict)
        );
    }
    let (store, _, _) = SledStore::open(&dir, EngineConfig::default(), opts(), now).unwrap();
    assert_eq!(
        store.account_by_email("ada@example.com").unwrap(),
        Some(acct("u1", "ada@example.com"))
    );
    assert_eq!(store.account("u2").unwrap(), None);
    assert_eq!(store.accounts().unwrap().len(), 1);
}

#[test]
fn events_reach_the_log_in_engine_order_whoever_waits_first() {
    let dir = temp_dir("order");
    let now = Millis(1_700_000_000_000);
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts(), now).unwrap();
    let (store, e) = (std::sync::Arc::new(store), std::sync::Arc::new(e));
    let (seen_tx, seen) = std::sync::mpsc::channel();
    store.on_durable(Box::new(move |evs| {
        for ev in evs {
            seen_tx.send(ev.seq).unwrap();
        }
    }));
    // Four threads race commands through the engine and wait for their own
    // events in whatever order they return; the log takes the engine's.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, e) = (store.clone(), e.clone());
            std::thread::spawn(move || {
                for k in 0..50 {
                    let id = format!("t{t}-{k}");
                    let ev = e.create_job(new_job(&id, k as u64), now).unwrap();
                    let last = ev.last().unwrap().seq;
                    assert!(store.append(ev).unwrap() >= last);
                    assert!(store.durable_seq() >= last);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let delivered: Vec<u64> = seen.try_iter().collect();
    assert_eq!(
        delivered,
        (1..=200).collect::<Vec<_>>(),
        "one order, no gaps"
    );
    // A barrier past the end waits for the event, then answers.
    let (btx, brx) = std::sync::mpsc::channel();
    store.durable_through(201, Box::new(move |r| btx.send(r).unwrap()));
    assert!(brx
        .recv_timeout(std::time::Duration::from_millis(200))
        .is_err());
    e.create_job(new_job("last", 1), now).unwrap();
    assert_eq!(brx.recv().unwrap(), Ok(201));
    store.close();
    drop(store);
    let (_s, e2, _) = SledStore::open(&dir, EngineConfig::default(), opts(), now).unwrap();
    assert_eq!(e2.last_seq(), 201);
}

#[test]
fn snapshotter_snapshots_by_count_and_on_stop() {
    let dir = temp_dir("snapshotter");
    let now = Millis(1_700_000_000_000);
    let o = StoreOptions {
        snapshot_every_events: 20,
        ..StoreOptions::default()
    };
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), o.clone(), now).unwrap();
    let (store, e) = (std::sync::Arc::new(store), std::sync::Arc::new(e));
    let snap = persistence::Snapshotter::start(
        store.clone(),
        e.clone(),
        std::time::Duration::from_millis(10),
    );
    for k in 0..30 {
        store
            .append(e.create_job(new_job(&format!("j{k}"), k), now).unwrap())
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.log_len() >= 30 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        store.log_len() < 30,
        "a snapshot by count compacted the log"
    );
    store
        .append(e.create_job(new_job("last", 99), now).unwrap())
        .unwrap();
    snap.stop();
    assert_eq!(store.log_len(), 0, "the final snapshot covers everything");
    store.close();
    drop(store);
    let (_s, e2, report) = SledStore::open(&dir, EngineConfig::default(), o, now).unwrap();
    assert_eq!(report.replayed, 0);
    assert_eq!(e2.last_seq(), e.last_seq());
}
