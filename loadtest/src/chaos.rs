//! The chaos mode: a crash loop under load, then an audit of every
//! acknowledged write against what the server has.
//!
//! During the run a node is killed with SIGKILL every `kill_every` (with
//! several nodes, a random one) and started again on the same data
//! directory; the simulated apps reconnect with `?since=`, take the replay
//! (or, after a gap, re-read their jobs over HTTP) and carry on; creates are
//! retried under an `Idempotency-Key` until acknowledged. At the end:
//!
//! * every job whose create was acknowledged exists (`lost_jobs`);
//! * every acknowledged accept / arrive / complete is reflected: the job is
//!   at least that far, with that worker (`lost_steps`);
//! * no worker was offered a job while its own message stream said it held
//!   another, and no worker holds two open jobs on the server
//!   (`double_booked`);
//! * no acknowledged job is left unfinished after the drain while workers
//!   are idle (`offers_lost`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::opts::Chaos;
use crate::sim::{mint, step_of, Shared};
use crate::target::Restarter;

#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    pub node: usize,
    /// From the kill to `/readyz` answering 200 on the restarted node.
    pub ready_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosReport {
    pub cycles: Vec<Cycle>,
    /// Kills that were not followed by a ready node (the run failed there).
    pub restart_failures: u64,
    pub reconnects: u64,
    pub resumed_without_gap: u64,
    pub resumed_with_gap: u64,
    pub creates_retried: u64,
    /// Retries answered 200 with the job the lost answer had created.
    pub creates_replayed: u64,
    pub jobs_acknowledged: u64,
    /// Accepts, arrivals and completions acknowledged (each job is checked
    /// against the furthest one).
    pub steps_acknowledged: u64,
    pub lost_jobs: u64,
    pub lost_steps: u64,
    /// Seen in the workers' message streams, plus workers holding two open
    /// jobs on the server at the end.
    pub double_booked: u64,
    /// Acknowledged jobs not finished after the drain.
    pub unfinished: u64,
    /// With several nodes: jobs the nodes do not agree on (status, worker
    /// or attempts) — every node applies the same commands, so any is a bug.
    pub diverged_jobs: u64,
    /// … of which while some worker was idle.
    pub offers_lost: u64,
    /// The first few failures, for the report.
    pub examples: Vec<String>,
}

impl ChaosReport {
    pub fn failures(&self) -> u64 {
        self.restart_failures
            + self.lost_jobs
            + self.lost_steps
            + self.double_booked
            + self.offers_lost
    }

    fn example(&mut self, s: String) {
        if self.examples.len() < 10 {
            self.examples.push(s);
        }
    }
}

/// Kills and restarts nodes until `cycles` are done or the run stops.
pub async fn kill_loop(
    restarter: Restarter,
    chaos: Chaos,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Cycle>, u64) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc4a0_5c4a);
    let (mut cycles, mut failures) = (Vec::new(), 0);
    for _ in 0..chaos.cycles {
        tokio::select! {
            _ = tokio::time::sleep(chaos.kill_every) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let node = rng.random_range(0..restarter.nodes());
        match restarter.kill_and_restart(node, &http).await {
            Ok(d) => cycles.push(Cycle {
                node,
                ready_ms: d.as_millis() as u64,
            }),
            Err(e) => {
                eprintln!("chaos: node {node} did not come back: {e:#}");
                failures += 1;
                break;
            }
        }
    }
    (cycles, failures)
}

/// Reads every acknowledged job back (as ops) and checks it against what
/// the apps were told.
pub async fn audit(sh: &Arc<Shared>, idle_workers: u64) -> ChaosReport {
    let stats = &sh.stats;
    let mut rep = ChaosReport {
        reconnects: stats.msgs.get("chaos.reconnected"),
        resumed_without_gap: stats.msgs.get("chaos.resumed_without_gap"),
        resumed_with_gap: stats.msgs.get("chaos.resumed_with_gap"),
        creates_retried: stats.msgs.get("chaos.create_retried"),
        creates_replayed: stats.msgs.get("chaos.create_replayed"),
        double_booked: stats.double_booked.load(Ordering::Relaxed),
        ..ChaosReport::default()
    };
    let ids: Vec<String> = stats.job_ids.iter().map(|e| e.key().clone()).collect();
    rep.jobs_acknowledged = ids.len() as u64;
    rep.steps_acknowledged = stats.msgs.get("chaos.step_acknowledged");
    // Reads are rate-limited per user (`requests_per_minute`): each ops
    // identity reads at most a burst's worth.
    let tokens: Vec<String> = (0..ids.len().div_ceil(AUDIT_READS_PER_USER))
        .map(|k| mint(&sh.secret, &format!("lt-audit-{k}"), "ops", None))
        .collect();
    let fetched: Vec<(String, Result<Option<Value>, String>, bool)> =
        futures_util::stream::iter(ids.into_iter().enumerate())
            .map(|(n, id)| {
                let (sh, ops) = (sh.clone(), tokens[n / AUDIT_READS_PER_USER].clone());
                async move {
                    let r = read_job(&sh, &ops, &id, 0).await;
                    // Every other node must say the same.
                    let mut same = true;
                    if let Ok(Some(j)) = &r {
                        for node in 1..sh.bases.len() {
                            if let Ok(Some(o)) = read_job(&sh, &ops, &id, node).await {
                                same &= ["status", "worker_id", "attempts"]
                                    .iter()
                                    .all(|k| o[*k] == j[*k]);
                            }
                        }
                    }
                    (id, r, same)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
    let mut open_by_worker: HashMap<String, Vec<String>> = HashMap::new();
    for (id, r, same) in fetched {
        if !same {
            rep.diverged_jobs += 1;
            rep.example(format!("job {id}: the nodes disagree on it"));
        }
        let job = match r {
            Ok(Some(j)) => j,
            Ok(None) => {
                rep.lost_jobs += 1;
                rep.example(format!("job {id}: acknowledged, now 404"));
                continue;
            }
            Err(e) => {
                rep.lost_jobs += 1;
                rep.example(format!("job {id}: could not be read: {e}"));
                continue;
            }
        };
        let status = job["status"].as_str().unwrap_or("");
        let worker = job["worker_id"].as_str().unwrap_or("");
        if let Some(acked) = stats.acked_steps.get(&id) {
            let (step, by) = acked.value();
            if step_of(status) < *step || worker != by {
                rep.lost_steps += 1;
                rep.example(format!(
                    "job {id}: step {step} acknowledged to {by}, now {status} with {worker:?}"
                ));
            }
        }
        match status {
            "completed" | "cancelled" | "unmatched" => {}
            _ => {
                rep.unfinished += 1;
                if idle_workers > 0 {
                    rep.offers_lost += 1;
                    rep.example(format!(
                        "job {id}: still {status} after the drain with {idle_workers} idle workers"
                    ));
                }
                if matches!(status, "offered" | "accepted" | "arrived") {
                    open_by_worker
                        .entry(worker.to_string())
                        .or_default()
                        .push(id.clone());
                }
            }
        }
    }
    for (w, jobs) in open_by_worker {
        if jobs.len() > 1 {
            rep.double_booked += 1;
            rep.example(format!("worker {w} holds {jobs:?}"));
        }
    }
    rep
}

/// Jobs one ops identity reads in the audit (under the default 600 a minute).
const AUDIT_READS_PER_USER: usize = 400;

/// A job as ops reads it, from node `first` or (if it does not answer) the
/// next ones; a rate-limit answer is waited out, not counted as a failure.
async fn read_job(sh: &Shared, ops: &str, id: &str, first: usize) -> Result<Option<Value>, String> {
    let mut last = String::new();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut attempt = 0usize;
    while attempt < 6 && tokio::time::Instant::now() < give_up {
        let base = &sh.bases[(first + attempt) % sh.bases.len()];
        match sh
            .http
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(ops)
            .send()
            .await
        {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(None),
            Ok(r) if r.status().is_success() => {
                return r.json().await.map(Some).map_err(|e| e.to_string())
            }
            Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 60))).await;
                continue;
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}
