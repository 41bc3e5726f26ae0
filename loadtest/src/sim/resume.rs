//! Chaos mode: how an app comes back after its node died — reopen with
//! `?since=`, take the replay up to `resumed`, re-read its jobs after a gap.

use super::*;

/// Chaos mode: opens client `i`'s socket again after its node went away —
/// its own node first, then the others — with `?since=` its last `seq`;
/// gives up only when the run stops.
pub(super) async fn reopen_socket(
    sh: &Shared,
    i: usize,
    token: &str,
    since: u64,
) -> Option<(Socket, usize)> {
    let t0 = Instant::now();
    let n = sh.servers.len();
    let query = if since > 0 {
        format!("/v1/ws?token={token}&since={since}")
    } else {
        format!("/v1/ws?token={token}")
    };
    let mut attempt = 0usize;
    while !*sh.stop.borrow() {
        let node = (i + attempt) % n;
        let connect = connect_ws(sh.servers[node], source_ip(i, sh.opts.source_ips), &query);
        if let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(5), connect).await {
            sh.stats.reconnect.record(t0.elapsed());
            sh.stats.msgs.add("chaos.reconnected", 1);
            return Some((ws, node));
        }
        attempt += 1;
        // Backing off (50 ms doubling to 1 s, jittered): a fleet whose node
        // died must not hammer it while it restarts.
        let base = 50u64 << attempt.min(5);
        let ms = base.min(1000) / 2 + rand::random_range(0..=base.min(1000) / 2);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    None
}

/// Chaos mode: reads a resuming socket up to its `resumed`, handing every
/// replayed message to `each`; true when the server said there is a gap.
pub(super) async fn read_resume(
    sh: &Shared,
    ws: &mut Socket,
    mut each: impl FnMut(Value),
) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        let Ok(Some(v)) = decode(&sh.stats, m) else {
            continue;
        };
        if v["type"] == "resumed" {
            let gap = v["gap"].as_bool().unwrap_or(false);
            sh.stats.msgs.add(
                if gap {
                    "chaos.resumed_with_gap"
                } else {
                    "chaos.resumed_without_gap"
                },
                1,
            );
            return Some(gap);
        }
        each(v);
    }
}

/// Chaos mode: a user's jobs as the server has them now (the re-read after a gap).
pub(super) async fn my_jobs(sh: &Shared, node: usize, token: &str) -> Option<Vec<Value>> {
    let r = sh
        .http
        .get(format!("{}/v1/jobs?limit=50", sh.bases[node]))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    sh.stats.msgs.add("chaos.jobs_reread", 1);
    v["jobs"].as_array().cloned()
}

/// How far a job's status is along accept → arrive → complete.
pub fn step_of(status: &str) -> u8 {
    match status {
        "accepted" => 1,
        "arrived" => 2,
        "completed" => 3,
        _ => 0,
    }
}
