//! The crash loop in its short form (the long one is `loadtest rush
//! --chaos-kill-every-s`, BENCHMARKS.md): a fleet works through jobs while
//! the server is killed with SIGKILL three times and started again on the
//! same data; the apps reconnect with `?since=` and carry on. Then every
//! acknowledged create, accept, arrive and complete is audited against the
//! server: nothing lost, nobody double-booked, nothing left waiting.
//!
//! One node on the backend of `E2E_BACKEND` (the embedded store, or a
//! one-node cluster on its own redis-server), and three cluster nodes
//! behind one Redis with a random one killed each time.

use std::path::Path;
use std::time::Duration;

use loadtest::baseline::RedisServer;
use loadtest::opts::{Chaos, Options, Scenario};
use loadtest::target::Target;
use loadtest::{report, run};

const SECRET: &str = "chaos-test-secret-0123456789abcdef";

fn redis_backend() -> bool {
    std::env::var("E2E_BACKEND").is_ok_and(|b| b == "redis")
}

async fn crash_loop(nodes: usize, cluster: bool) {
    let http = reqwest::Client::new();
    let mut env = vec![
        // Offers lapse quickly, so ignored ones come back within the drain.
        (
            "DISPATCHD_DISPATCH_OFFER_TIMEOUT_S".to_string(),
            "2".to_string(),
        ),
    ];
    let redis = if cluster {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let r = RedisServer::spawn(Path::new(&bin), true)
            .await
            .expect("redis-server is needed: ./scripts/test.sh installs it");
        env.push(("DISPATCHD_REDIS_URL".to_string(), r.url.clone()));
        Some(r)
    } else {
        None
    };
    let mut target = Target::spawn(
        Path::new(env!("CARGO_BIN_EXE_dispatchd")),
        SECRET,
        &env,
        &http,
        nodes,
    )
    .await
    .unwrap();
    let chaos = Chaos {
        kill_every: Duration::from_secs(3),
        cycles: 3,
    };
    let opts = Options {
        workers: 120,
        residents: 40,
        cities: 3,
        jobs_per_s: 15.0,
        positions_per_s: 1.0,
        ack_sample: 0.1,
        duration: chaos.kill_every * (chaos.cycles as u32 + 1),
        ramp_per_s: 2000.0,
        think: Duration::from_millis(50),
        decline_ratio: 0.1,
        ignore_ratio: 0.05,
        travel: Duration::from_millis(100),
        session: Duration::from_millis(200),
        drain: Duration::from_secs(30),
        source_ips: 2,
        chaos: Some(chaos),
        ..Options::defaults(Scenario::Rush)
    };
    let rep = run::run(opts, &target, SECRET, false).await.unwrap();
    let text = report::summary(&rep);
    println!("{text}");
    let c = rep.chaos.as_ref().expect("a chaos report");
    assert_eq!(c.cycles.len(), 3, "{text}");
    assert_eq!(c.restart_failures, 0, "{text}");
    assert_eq!(c.lost_jobs, 0, "{text}");
    assert_eq!(c.lost_steps, 0, "{text}");
    assert_eq!(c.double_booked, 0, "{text}");
    assert_eq!(c.offers_lost, 0, "{text}");
    assert_eq!(c.diverged_jobs, 0, "{text}");
    // The audit had something to check, and the apps really came back.
    assert!(c.jobs_acknowledged >= 100, "{text}");
    assert!(c.steps_acknowledged >= 50, "{text}");
    assert!(c.reconnects > 0, "{text}");
    // (The generator's own "never offered" count is not asserted here: an
    // offer lost with its node is answered through the re-read, possibly
    // before the create's answer names the job; `offers_lost` above is the
    // server's word.)
    assert_eq!(rep.lost.accepted_without_resident_update, 0, "{text}");
    assert_eq!(rep.lost.completed_without_resident_update, 0, "{text}");
    assert!(
        !rep.errors.contains_key("double_booked")
            && !rep.errors.contains_key("create_never_acknowledged"),
        "{text}"
    );
    assert_eq!(target.stop(), Some(true), "a node did not stop cleanly");
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_on_one_node_loses_nothing() {
    crash_loop(1, redis_backend()).await;
}

/// Three nodes. Once ignored: on a CPU-starved machine the long run found
/// nodes disagreeing after restarts — a restarted node's catch-up had the
/// entries it had yet to read trimmed by the next shared snapshot
/// (`backend/cluster/retention.rs` now keeps them; BENCHMARKS.md, chaos).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_on_three_nodes_loses_nothing() {
    if redis_backend() {
        return; // a cluster already: the default run covers it
    }
    crash_loop(3, true).await;
}
