//! History leaves memory: 100 000 jobs driven through their whole lifecycle
//! (with injected time) end in the on-disk archive once older than the
//! retention; the engine then holds no finished job, the snapshot does not
//! grow with history, and every job is still readable through the query
//! functions the HTTP routes use (`Engine::job_for` / `list_jobs`, then the
//! archive's `job_for` / `list`, merged by `engine::merge_history`).
//! `HISTORY_JOBS` changes the count.

mod common;

use common::*;
use engine::*;
use persistence::{SledStore, StoreOptions};

const KEEP_MS: i64 = 3_600_000;

fn snapshot_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[test]
fn finished_jobs_leave_memory_and_stay_readable() {
    let total: u64 = std::env::var("HISTORY_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = temp_dir("history");
    let opts = StoreOptions {
        snapshot_every_events: 0,
        keep_snapshots: 1,
        ..StoreOptions::default()
    };
    let t0 = Millis(1_700_000_000_000);
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts.clone(), t0).unwrap();
    store.append(fleet(&e, 8, t0)).unwrap();
    let mut h = Holders::default();
    let mut now = t0;
    let mut sizes = Vec::new();
    let mut last = 0;
    for k in 0..total {
        now = Millis(now.0 + 100); // 100 000 jobs span 2.8 hours
                                   // Keep every worker's position fresh (stale_after_s).
        if k % 100 == 0 {
            for i in 0..8 {
                e.update_position(&wid(i), LAT + i as f64 * 0.001, LNG, now)
                    .unwrap();
            }
        }
        let id = JobId::from(format!("j{k}"));
        let created = Op::CreateJob(new_job(id.as_str(), k))
            .apply(&e, now, &mut h)
            .unwrap();
        let job = created.job.unwrap();
        match k % 4 {
            // A quarter is cancelled while searching or offered.
            3 => {
                Op::Cancel {
                    job: id.clone(),
                    reason: None,
                }
                .apply(&e, now, &mut h)
                .unwrap();
            }
            _ => {
                let worker = job
                    .worker_id
                    .expect("eight idle workers, one job at a time");
                for step in [WorkerStep::Accept, WorkerStep::Arrive, WorkerStep::Complete] {
                    let op = Op::Step {
                        job: id.clone(),
                        worker: worker.clone(),
                        step,
                    };
                    op.apply(&e, now, &mut h).unwrap();
                }
            }
        }
        // The time driver's archive pass, as the gateway's timer runs it.
        if k % 500 == 499 {
            let ids = e.archivable(Millis(now.0 - KEEP_MS), usize::MAX);
            let a = Op::Archive { jobs: ids }.apply(&e, now, &mut h).unwrap();
            if let Some(ev) = a.events.last() {
                last = ev.seq;
            }
        }
        if k % 25_000 == 24_999 {
            store.durable_through_blocking(e.last_seq()).unwrap();
            store.snapshot(&e).unwrap();
            sizes.push(snapshot_bytes(&dir));
        }
    }
    // Past the retention, everything goes.
    now = Millis(now.0 + KEEP_MS + 1);
    let ids = e.archivable(now, usize::MAX);
    Op::Archive { jobs: ids }.apply(&e, now, &mut h).unwrap();
    assert!(last > 0, "archive passes ran");
    let (in_memory, finished) = e.jobs_in_memory();
    assert_eq!(
        (in_memory, finished),
        (0, 0),
        "no finished job left in memory"
    );
    store.durable_through_blocking(e.last_seq()).unwrap();
    store.snapshot(&e).unwrap();
    let final_size = snapshot_bytes(&dir);
    eprintln!("snapshot bytes at each quarter: {sizes:?}, at the end: {final_size}");
    // Live work at each snapshot is at most an hour of jobs (the retention);
    // the snapshot must not keep growing once history outweighs that.
    let first_full = sizes[sizes.len().min(2) - 1];
    assert!(
        *sizes.last().unwrap() <= first_full + first_full / 10,
        "snapshot grows with history: {sizes:?}"
    );
    assert!(
        final_size < 64 * 1024,
        "an engine without live jobs: {final_size} bytes"
    );
    assert_eq!(store.archive().len() as u64, total);

    // Every job readable as the routes read it, also after a restart.
    store.close();
    drop((store, e));
    let (store, e, _) = SledStore::open(&dir, EngineConfig::default(), opts, now).unwrap();
    assert_eq!(e.jobs_in_memory().0, 0);
    let ops = Viewer::Ops;
    let resident = Viewer::Resident(ResidentId::from("r"));
    let stranger = Viewer::Resident(ResidentId::from("someone-else"));
    for k in (0..total).step_by(97).chain([total - 1]) {
        let id = JobId::from(format!("j{k}"));
        assert!(e.job_for(&id, &ops).is_none());
        let j = store
            .archive()
            .job_for(&id, &resident)
            .unwrap()
            .expect("archived job readable");
        let want = if k % 4 == 3 {
            JobStatus::Cancelled
        } else {
            JobStatus::Completed
        };
        assert_eq!(j.status, want, "{id}");
        if want == JobStatus::Completed {
            assert!(j.fare_cents.is_some());
            let w = Viewer::Worker(j.worker_id.clone().unwrap());
            assert!(store.archive().job_for(&id, &w).unwrap().is_some());
        }
        assert!(
            store.archive().job_for(&id, &stranger).unwrap().is_none(),
            "404 for others"
        );
    }
    let q = JobQuery {
        viewer: resident,
        status: Some(JobStatus::Cancelled),
        limit: 50,
    };
    let listed = merge_history(e.list_jobs(&q), store.archive().list(&q).unwrap(), q.limit);
    assert_eq!(listed.len(), 50);
    let newest_cancelled = (0..total).rev().find(|k| k % 4 == 3).unwrap();
    assert_eq!(listed[0].id.as_str(), format!("j{newest_cancelled}"));
    assert!(
        listed.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    // A new job numbers after the archived ones.
    let next = Op::CreateJob(new_job("after", 1))
        .apply(&e, now, &mut h)
        .unwrap();
    assert_eq!(next.job.unwrap().seq, total + 1);
}

/// A data directory from before the redb archive (a sled `archive/`) keeps
/// its history: copied over once at open, the old directory moved aside.
#[test]
fn a_sled_archive_from_before_is_migrated() {
    let dir = temp_dir("archive-migrate");
    std::fs::create_dir_all(&dir).unwrap();
    let t0 = Millis(1_700_000_000_000);
    let e = Engine::new(EngineConfig::default()).unwrap();
    let mut h = Holders::default();
    let mut jobs = Vec::new();
    for k in 0..3 {
        let r = Op::CreateJob(new_job(&format!("old{k}"), k))
            .apply(&e, t0, &mut h)
            .unwrap();
        jobs.push(r.job.unwrap());
    }
    {
        let old = sled::open(dir.join("archive")).unwrap();
        let tree = old.open_tree("jobs").unwrap();
        for j in &jobs {
            tree.insert(j.id.as_str(), persistence::codec::encode(j))
                .unwrap();
        }
        old.flush().unwrap();
    }
    let (store, _, _) =
        SledStore::open(&dir, EngineConfig::default(), StoreOptions::default(), t0).unwrap();
    assert_eq!(store.archive().len(), 3);
    let got = store.archive().get(&jobs[1].id).unwrap().expect("migrated");
    assert_eq!(got, jobs[1]);
    let listed = store
        .archive()
        .list(&JobQuery {
            viewer: Viewer::Ops,
            status: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(listed.len(), 3, "indexes rebuilt");
    assert!(!dir.join("archive").exists(), "old directory moved aside");
    assert!(dir.join("archive.sled-migrated").is_dir());
}
