//! A short run of the generator against a real dispatchd (in-process, on a
//! free loopback port): the generator and the server must agree on what
//! happened, with no protocol errors and no lost work. Plus a few seconds
//! of the Redis-GEO baseline (`./scripts/test.sh` installs redis-server).

use std::time::Duration;

use loadtest::opts::{Options, Scenario};
use loadtest::target::Target;
use loadtest::{baseline, report, run};

const SECRET: &str = "loadtest-smoke-secret-0123456789";

async fn start_server() -> (Target, tokio::sync::oneshot::Sender<()>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("dispatchd-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let env = vec![
        ("DISPATCHD_AUTH_JWT_SECRET".to_string(), SECRET.to_string()),
        (
            "DISPATCHD_STORAGE_DATA_DIR".to_string(),
            dir.display().to_string(),
        ),
        (
            "DISPATCHD_DISPATCH_OFFER_TIMEOUT_S".to_string(),
            "2".to_string(),
        ),
    ];
    let cfg = gateway::config::Config::from_parts("", env).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        gateway::server::run(cfg, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let http = reqwest::Client::new();
    let target = Target::external(&format!("http://{addr}"), &[std::process::id()], &http)
        .await
        .unwrap();
    (target, tx, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_and_server_agree() {
    let (target, stop, dir) = start_server().await;
    let opts = Options {
        workers: 200,
        residents: 60,
        cities: 3,
        jobs_per_s: 25.0,
        positions_per_s: 2.0,
        ack_sample: 0.2,
        duration: Duration::from_secs(3),
        ramp_per_s: 2000.0,
        think: Duration::from_millis(30),
        decline_ratio: 0.1,
        ignore_ratio: 0.05,
        travel: Duration::from_millis(50),
        session: Duration::from_millis(100),
        drain: Duration::from_secs(10),
        saturate: Duration::from_secs(1),
        saturate_clients: 4,
        source_ips: 2,
        ..Options::defaults(Scenario::Rush)
    };
    let rep = run::run(opts, &target, SECRET, false).await.unwrap();
    let text = report::summary(&rep);
    println!("{text}");
    assert!(
        rep.errors.is_empty(),
        "protocol or server errors: {:?}",
        rep.errors
    );
    assert_eq!(rep.sockets_opened_peak, 260);
    // Every created job was either offered or is still waiting — on both sides.
    assert!(rep.jobs_created >= 70, "{}", rep.jobs_created);
    assert_eq!(rep.jobs_created, rep.jobs_offered + rep.jobs_never_offered);
    assert_eq!(
        rep.server.jobs_listed, rep.jobs_created,
        "server and generator disagree on jobs created"
    );
    assert_eq!(rep.server.jobs_listed_offered, rep.jobs_offered);
    assert_eq!(rep.server.jobs_listed_waiting, rep.jobs_never_offered);
    let created = rep.server.metrics["dispatchd_job_transitions_total{event=\"job_created\"}"];
    assert!(created >= rep.jobs_created as f64);
    // Nothing lost.
    assert_eq!(rep.lost.never_offered_with_idle_workers, 0);
    assert_eq!(rep.lost.accepted_without_resident_update, 0);
    assert_eq!(rep.lost.completed_without_resident_update, 0);
    // Every timer fired and every sampled ack came back.
    assert_eq!(rep.offer.count, rep.jobs_offered);
    assert!(rep.location_ack.count > 0);
    assert!(rep.saturate_matches_per_s.unwrap() > 0.0);
    assert!(rep.server.rss_peak_kib > 0);
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_geo_baseline_runs() {
    let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let redis = baseline::RedisServer::spawn(std::path::Path::new(&bin), true)
        .await
        .expect("redis-server is needed for the baseline: ./scripts/test.sh installs it");
    let opts = Options {
        workers: 300,
        residents: 50,
        cities: 3,
        jobs_per_s: 50.0,
        positions_per_s: 2.0,
        duration: Duration::from_secs(2),
        think: Duration::from_millis(10),
        travel: Duration::from_millis(10),
        session: Duration::from_millis(10),
        saturate: Duration::from_millis(500),
        saturate_clients: 4,
        ..Options::defaults(Scenario::Rush)
    };
    let b = baseline::run(&opts, &redis).await.unwrap();
    assert_eq!(b.errors, 0);
    assert!(b.matched >= 90, "{b:?}");
    assert!(b.positions_sent >= 1000, "{b:?}");
    assert!(b.saturate_matches_per_s.unwrap() > 0.0);
    assert!(b.server_usec_per_match.unwrap() > 0.0);
}
