//! Deadlines and retention with injected time: the application runs on a
//! `ManualClock`, the test moves it and calls the time driver — no sleeps.
//! An offer lapses after `offer_timeout_s` and goes to the next nearest
//! worker; a job nobody accepts within `search_timeout_s` becomes a dead
//! letter; `keep_finished_s` later it leaves memory and is still read.
//! On the backend of `E2E_BACKEND` (the embedded store, or a one-node
//! cluster on its own redis-server).

mod common;

use std::sync::Arc;

use engine::{JobStatus, Millis, NewJob, Op, ResidentId, Skill, Viewer, WorkerId};
use gateway::app::AppState;
use gateway::backend::Backend;
use gateway::clock::ManualClock;
use gateway::config::Config;
use gateway::metrics::Metrics;
use gateway::timers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_and_retention_follow_the_clock() {
    let dir = std::env::temp_dir().join(common::unique("dispatchd-time-"));
    let mut cfg = Config::default();
    cfg.storage.data_dir = dir.join("data");
    let redis = common::redis_backend().then(common::Redis::start);
    cfg.redis.url = redis.as_ref().map(|r| r.url());
    let t0 = Millis(1_800_000_000_000);
    let clock = Arc::new(ManualClock::new(t0));
    let app = AppState::with_clock(cfg.clone(), Metrics::install(), clock.clone());
    let (backend, engine) = Backend::open(&cfg, t0).await.unwrap();
    app.set_ready(engine, backend);
    let core = app.core().unwrap();
    assert_eq!(
        matches!(core.backend, Backend::Cluster(_)),
        common::redis_backend()
    );
    // A cluster node drives time once it holds the timer lease.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !core.backend.drives_time() {
        assert!(std::time::Instant::now() < deadline, "no timer lease");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let skill = Skill::new("plumbing").unwrap();
    for (w, lat) in [("near", 52.5201), ("far", 52.53)] {
        let worker = WorkerId::from(w);
        for op in [
            Op::RegisterWorker {
                worker: worker.clone(),
                skills: vec![skill.clone()],
            },
            Op::Connected {
                worker: worker.clone(),
                node: engine::LOCAL_NODE.into(),
            },
            Op::Available {
                worker: worker.clone(),
                on: true,
            },
            Op::Positions(vec![(worker.clone(), lat, 13.405)]),
        ] {
            core.exec(&app, op).await.unwrap();
        }
    }
    let new = NewJob {
        id: "job-1".into(),
        resident_id: ResidentId::from("r1"),
        lat: 52.52,
        lng: 13.405,
        skill,
        description: String::new(),
    };
    let created = core
        .exec(&app, Op::CreateJob(new))
        .await
        .unwrap()
        .job
        .unwrap();
    assert_eq!(created.worker_id, Some(WorkerId::from("near")));
    let id = created.id.clone();
    let read = || async {
        core.job_for(&app, &id, &Viewer::Ops)
            .await
            .unwrap()
            .unwrap()
    };

    // Nothing is due yet.
    clock.advance_ms(14_000);
    timers::deadlines(&app).await;
    assert_eq!(read().await.worker_id, Some(WorkerId::from("near")));
    // Past offer_timeout_s (15): the next nearest worker gets it.
    clock.advance_ms(2_000);
    timers::deadlines(&app).await;
    let j = read().await;
    assert_eq!(
        (j.status, j.worker_id.clone(), j.attempts),
        (JobStatus::Offered, Some(WorkerId::from("far")), 2)
    );
    // The far worker lets it lapse too; then search_timeout_s (120) runs out.
    clock.advance_ms(16_000);
    timers::deadlines(&app).await;
    assert_eq!(read().await.status, JobStatus::Searching);
    clock.advance_ms(120_000);
    timers::deadlines(&app).await;
    assert_eq!(read().await.status, JobStatus::Unmatched);
    // Retention: kept an hour, then archived, still readable.
    assert_eq!(timers::archive(&app).await, 0);
    clock.advance_ms(3_600_000 + 1);
    assert_eq!(timers::archive(&app).await, 1);
    assert!(core.engine.job(&id).is_none(), "left memory");
    assert_eq!(read().await.status, JobStatus::Unmatched);
    core.backend.close().await;
    drop(redis);
    let _ = std::fs::remove_dir_all(dir);
}
