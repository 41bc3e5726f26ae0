//! `kill -9` at random moments loses nothing acknowledged.
//!
//! The test re-runs its own binary as a child (`crash_child`, which does
//! nothing unless `DISPATCHD_CRASH_DIR` is set). The child opens the store,
//! recovers, and from four threads creates jobs, accepts and completes them,
//! creates accounts and takes snapshots, printing a line for every write the
//! store acknowledged. The parent SIGKILLs it after a random delay, reopens
//! the store and checks that every acknowledged event, job and account is
//! there, in order. 20 cycles by default; `DISPATCHD_CRASH_CYCLES=200 cargo
//! test -p persistence --test crash` for more.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use engine::*;
use persistence::{Account, Role, SledStore, StoreOptions};

fn opts() -> StoreOptions {
    StoreOptions {
        snapshot_every_events: 0,
        ..StoreOptions::default()
    }
}

fn now_ms() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
}

/// The child: writes until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("DISPATCHD_CRASH_DIR") else {
        return;
    };
    let cycle: u64 = std::env::var("DISPATCHD_CRASH_CYCLE")
        .unwrap()
        .parse()
        .unwrap();
    let (store, engine, _) =
        SledStore::open(Path::new(&dir), EngineConfig::default(), opts(), now_ms()).unwrap();
    let (store, engine) = (Arc::new(store), Arc::new(engine));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = |out: &Mutex<std::io::Stdout>, line: String| {
        let mut o = out.lock().unwrap();
        writeln!(o, "{line}").unwrap();
        o.flush().unwrap();
    };
    // Workers reconnect after the restart.
    let now = now_ms();
    let mut ev = fleet(&engine, 8, now);
    for i in 0..8 {
        ev.extend(engine.set_connected(&wid(i), true, now).unwrap());
    }
    store.append(ev).unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (store, engine, out) = (store.clone(), engine.clone(), out.clone());
            std::thread::spawn(move || {
                for k in 0u64.. {
                    let now = now_ms();
                    let id = format!("c{cycle}-t{t}-{k}");
                    let mut ev = engine.create_job(new_job(&id, k), now).unwrap();
                    // Drive an offered job through to completion now and then.
                    if let Some(w) = ev.iter().find_map(|e| match &e.kind {
                        EventKind::JobOffered { worker_id, .. } => Some(worker_id.clone()),
                        _ => None,
                    }) {
                        let job = JobId::from(id.as_str());
                        for step in 0..3 {
                            let r = match step {
                                0 => engine.accept(&job, &w, now),
                                1 => engine.arrive(&job, &w, now),
                                _ => engine.complete(&job, &w, now),
                            };
                            ev.extend(r.unwrap_or_default());
                        }
                    }
                    let max = ev.iter().map(|e| e.seq).max().unwrap();
                    store.append(ev).unwrap();
                    say(&out, format!("job {id} {max}"));
                    if k % 7 == 0 {
                        let acct = format!("{id}-acct");
                        store
                            .create_account(Account {
                                id: acct.clone(),
                                email: format!("{acct}@example.com"),
                                password_hash: "$argon2id$x".into(),
                                role: Role::Resident,
                                name: "R".into(),
                                skills: vec![],
                                created_at: now,
                            })
                            .unwrap();
                        say(&out, format!("account {acct}"));
                    }
                    if t == 0 && k % 40 == 39 {
                        store.snapshot(&engine).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in threads {
        h.join().unwrap();
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let cycles: u64 = std::env::var("DISPATCHD_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = temp_dir("crash");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut acked_jobs: Vec<(String, u64)> = Vec::new();
    let mut acked_accounts: Vec<String> = Vec::new();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("DISPATCHD_CRASH_DIR", &dir)
            .env("DISPATCHD_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        for l in &lines {
            let parts: Vec<&str> = l.split(' ').collect();
            match parts.as_slice() {
                ["job", id, seq] => acked_jobs.push((id.to_string(), seq.parse().unwrap())),
                ["account", id] => acked_accounts.push(id.to_string()),
                _ => {} // test-harness chatter
            }
        }

        let (store, engine, report) =
            SledStore::open(&dir, EngineConfig::default(), opts(), now_ms()).unwrap();
        let max_acked = acked_jobs.iter().map(|(_, s)| *s).max().unwrap_or(0);
        assert!(
            engine.last_seq() >= max_acked,
            "cycle {cycle}: acknowledged event {max_acked} lost (recovered up to {}; {report:?})",
            engine.last_seq()
        );
        for (id, _) in &acked_jobs {
            assert!(
                engine.job(&JobId::from(id.as_str())).is_some(),
                "cycle {cycle}: acknowledged job {id} lost"
            );
        }
        for id in &acked_accounts {
            assert!(
                store.account(id).unwrap().is_some(),
                "cycle {cycle}: acknowledged account {id} lost"
            );
        }
        // In order: each acknowledged job's events form a valid history, and
        // the recovered jobs of one thread were created in the order acknowledged.
        let seqs: Vec<u64> = acked_jobs
            .iter()
            .filter(|(id, _)| id.starts_with(&format!("c{cycle}-t0-")))
            .map(|(id, _)| engine.job(&JobId::from(id.as_str())).unwrap().seq)
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "cycle {cycle}: creation order kept"
        );
        drop(store);
        if cycle == 0 {
            assert!(
                !lines.is_empty(),
                "the child acknowledged nothing: it is not running"
            );
        }
    }
    assert!(
        acked_jobs.len() > cycles as usize,
        "too few writes to mean anything ({})",
        acked_jobs.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
