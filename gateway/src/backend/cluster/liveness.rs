//! Liveness: each node's heartbeat (and presence refresh, how far it has
//! applied the stream, and the check that Redis still holds what this node
//! applied), and the timer lease —
//! its holder drives time and notices dead nodes.

use super::*;

impl Cluster {
    /// Heartbeat, presence refresh, and a check that Redis still has what we applied.
    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // Presence keys live `stale_after_s`; refreshing them three times
        // per lifetime is enough (every second would cost a SET per worker
        // per second).
        let refresh_every = Duration::from_millis((self.stale_ms / 3).max(1000));
        let mut last_refresh = Instant::now();
        loop {
            tick.tick().await;
            let refresh = last_refresh.elapsed() >= refresh_every;
            if refresh {
                last_refresh = Instant::now();
            }
            // Ours first: the stream can only be ahead of what we applied.
            let ours = parse_id(&self.last_id.lock().expect("id lock"));
            let mut con = self.con.clone();
            let mut p = redis::pipe();
            p.cmd("SET")
                .arg(node_key(&self.node))
                .arg(1)
                .arg("PX")
                .arg(LEASE_MS)
                .ignore();
            for w in self.local.iter().filter(|_| refresh) {
                p.cmd("SET")
                    .arg(presence_key(w.key().as_str()))
                    .arg(&self.node)
                    .arg("PX")
                    .arg(self.stale_ms)
                    .ignore();
            }
            p.cmd("XREVRANGE")
                .arg(LOG)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
            let r: redis::RedisResult<(redis::streams::StreamRangeReply,)> =
                p.query_async(&mut con).await;
            let reported = if r.is_ok() {
                let at = self.last_id.lock().expect("id lock").clone();
                self.report_applied(&at).await
            } else {
                Ok(())
            };
            match r.and_then(|r| reported.map(|_| r)) {
                Ok((last,)) => {
                    let theirs = last.ids.first().map(|e| parse_id(&e.id)).unwrap_or((0, 0));
                    if theirs < ours {
                        if !self.diverged.swap(true, Ordering::AcqRel) {
                            tracing::error!(
                                ?ours,
                                ?theirs,
                                "redis lost stream entries this node applied (was it restarted without AOF?); not ready"
                            );
                        }
                    } else {
                        self.healthy.store(true, Ordering::Release);
                    }
                }
                Err(e) => {
                    self.healthy.store(false, Ordering::Release);
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        }
    }

    /// Keeps the timer lease (its holder drives time: `timers.rs`) and, as
    /// holder, notices dead nodes.
    pub(super) async fn lease_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_renew = Instant::now() - Duration::from_secs(10);
        let mut last_check = Instant::now();
        loop {
            tick.tick().await;
            if last_renew.elapsed() >= Duration::from_secs(1) {
                last_renew = Instant::now();
                let held = self.renew_lease().await.unwrap_or(false);
                self.is_timer.store(held, Ordering::Release);
            }
            if !self.is_timer.load(Ordering::Acquire) || !self.is_healthy() {
                continue;
            }
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                let nodes = self.holders.lock().expect("holders lock").nodes();
                let mut con = self.con.clone();
                for n in nodes {
                    if n == self.node {
                        continue;
                    }
                    let alive: bool = con.exists(node_key(&n)).await.unwrap_or(true);
                    if !alive {
                        // Gone: disconnect its workers everywhere (once applied,
                        // it holds none and is not looked at again).
                        tracing::warn!(node = %n, "node heartbeat lapsed; disconnecting its workers");
                        let _ = self.submit(Op::NodeDown { node: n }).await;
                    }
                }
            }
        }
    }

    async fn renew_lease(&self) -> redis::RedisResult<bool> {
        let script = redis::Script::new(
            r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
              if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
              return 0",
        );
        let mut con = self.con.clone();
        let held: i64 = script
            .key(TIMER)
            .arg(&self.node)
            .arg(LEASE_MS)
            .invoke_async(&mut con)
            .await?;
        Ok(held == 1)
    }
}
