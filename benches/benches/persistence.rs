//! Durable append throughput and recovery time of the sled store.
//!
//! `cargo bench -p dispatchd-benches --bench persistence`
//! Env: `RECOVERY_SIZES=100000,1000000`, `APPEND_SECS=3`, `BENCH_DIR` (default: a temp dir).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatchd_benches::*;
use engine::{EngineConfig, JobId, Millis, NewJob, ResidentId};
use persistence::{SledStore, StoreOptions};

fn dir(name: &str) -> std::path::PathBuf {
    let base = std::env::var("BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| std::env::temp_dir());
    let d = base.join(format!("dispatchd-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts() -> StoreOptions {
    StoreOptions {
        snapshot_every_events: 0,
        ..StoreOptions::default()
    }
}

fn job(k: u64) -> NewJob {
    let (lat, lng) = offset(
        CENTRE,
        (k % 1000) as f64 * 10.0,
        (k / 1000 % 1000) as f64 * 10.0,
    );
    NewJob {
        id: JobId::from(format!("job-{k:012}")),
        resident_id: ResidentId::from(format!("resident-{}", k % 10_000)),
        lat,
        lng,
        skill: skill((k % 5) as u8),
        description: "Kitchen tap drips; access via side gate".into(),
    }
}

fn appends() {
    let secs: u64 = std::env::var("APPEND_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "## Durable appends (each append = one job creation's events, acknowledged after fsync)\n"
    );
    println!("| writers | appends/s | events/s | mean batch per flush |");
    println!("|---:|---:|---:|---:|");
    for writers in [1usize, 8, 64] {
        let d = dir(&format!("append{writers}"));
        let (store, engine, _) = SledStore::open(&d, EngineConfig::default(), opts(), NOW).unwrap();
        let (store, engine) = (Arc::new(store), Arc::new(engine));
        let stop = Arc::new(AtomicBool::new(false));
        let (appends, events, next) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let start = Instant::now();
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let (store, engine, stop) = (store.clone(), engine.clone(), stop.clone());
                let (appends, events, next) = (appends.clone(), events.clone(), next.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let ev = engine.create_job(job(k), Millis(NOW.0 + k as i64)).unwrap();
                        let n = ev.len() as u64;
                        store.append(ev).unwrap();
                        appends.fetch_add(1, Ordering::Relaxed);
                        events.fetch_add(n, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        let el = start.elapsed().as_secs_f64();
        let (a, e) = (
            appends.load(Ordering::Relaxed),
            events.load(Ordering::Relaxed),
        );
        let flushes = store.flushes().max(1);
        println!(
            "| {writers} | {:.0} | {:.0} | {:.1} |",
            a as f64 / el,
            e as f64 / el,
            a as f64 / flushes as f64
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&d);
    }
    println!();
}

fn recovery() {
    let sizes: Vec<u64> = std::env::var("RECOVERY_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    println!("## Recovery (open + load snapshot + replay log; events are job creations)\n");
    println!("| logged events | snapshot | replayed | recovery time | peak RSS after |");
    println!("|---:|---|---:|---:|---:|");
    for n in sizes {
        let d = dir(&format!("recovery{n}"));
        {
            let (store, engine, _) =
                SledStore::open(&d, EngineConfig::default(), opts(), NOW).unwrap();
            let mut batch = Vec::new();
            for k in 0..n {
                batch.extend(engine.create_job(job(k), Millis(NOW.0 + k as i64)).unwrap());
                if batch.len() >= 10_000 {
                    store.append(std::mem::take(&mut batch)).unwrap();
                }
            }
            store.append(batch).unwrap();
        }
        let time_open = || {
            let t = Instant::now();
            let (store, engine, report) =
                SledStore::open(&d, EngineConfig::default(), opts(), NOW).unwrap();
            let el = t.elapsed();
            (store, engine, report, el)
        };
        let (store, engine, report, el) = time_open();
        println!(
            "| {n} | none | {} | {:.2} s | {:.0} MiB |",
            report.replayed,
            el.as_secs_f64(),
            rss_mib()
        );
        // Snapshot at 90%: the usual case, a snapshot plus a short log.
        let tail = n / 10;
        drop(engine);
        drop(store);
        let _ = std::fs::remove_dir_all(&d);
        {
            let (store, engine, _) =
                SledStore::open(&d, EngineConfig::default(), opts(), NOW).unwrap();
            let mut batch = Vec::new();
            for k in 0..n {
                batch.extend(engine.create_job(job(k), Millis(NOW.0 + k as i64)).unwrap());
                if batch.len() >= 10_000 || k + 1 == n - tail {
                    store.append(std::mem::take(&mut batch)).unwrap();
                }
                if k + 1 == n - tail {
                    store.snapshot(&engine).unwrap();
                }
            }
            store.append(batch).unwrap();
        }
        let (_store, _engine, report, el) = time_open();
        println!(
            "| {n} | at {} | {} | {:.2} s | {:.0} MiB |",
            report.snapshot_seq.unwrap_or(0),
            report.replayed,
            el.as_secs_f64(),
            rss_mib()
        );
        let _ = std::fs::remove_dir_all(&d);
    }
    println!();
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("persistence harness: run it with `cargo bench -p dispatchd-benches --bench persistence`");
        return;
    }
    appends();
    recovery();
}
