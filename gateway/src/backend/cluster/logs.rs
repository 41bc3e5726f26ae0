//! The cluster's maintenance logs, in Redis where every node (and one that
//! joins later) reads them: every node that applies a `MaintenanceLogged`
//! entry of the stream writes the log (the same bytes each time, so a
//! second write changes nothing) before it answers anyone waiting on that
//! entry. Keys: the log by id; sorted sets by performed time over all
//! logs, per schedule and per property (listings, newest first).

use engine::{Log, LogQuery};
use redis::AsyncCommands;

use super::{redis_down, Cluster};
use crate::error::ApiError;

const ALL: &str = "dispatchd:mlogs:all";

fn key(id: &str) -> String {
    format!("dispatchd:mlog:{id}")
}
fn schedule_key(s: &str) -> String {
    format!("dispatchd:mlogs:sch:{s}")
}
fn property_key(p: &str) -> String {
    format!("dispatchd:mlogs:prop:{p}")
}

impl Cluster {
    /// Writes logs; retried until Redis takes them (the stream entry that
    /// wrote them is already applied here).
    pub(super) async fn logs_put(&self, logs: &[Log]) {
        if logs.is_empty() {
            return;
        }
        let mut backoff = std::time::Duration::from_millis(50);
        loop {
            let mut p = redis::pipe();
            p.atomic();
            for l in logs {
                let bytes = rmp_serde::to_vec_named(l).expect("logs serialise");
                let at = l.performed_at.0;
                p.set(key(&l.id), bytes).ignore();
                p.zadd(ALL, &l.id, at).ignore();
                p.zadd(schedule_key(&l.schedule_id), &l.id, at).ignore();
                p.zadd(property_key(&l.property_id), &l.id, at).ignore();
            }
            let mut con = self.con.clone();
            match p.query_async::<()>(&mut con).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "log write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }

    /// The logs `q` asks for, newest first.
    pub async fn logs_query(&self, q: &LogQuery) -> Result<Vec<Log>, ApiError> {
        let keys: Vec<String> = match (&q.schedules, &q.properties) {
            (Some(s), _) => s.iter().map(|s| schedule_key(s)).collect(),
            (None, Some(p)) => p.iter().map(|p| property_key(p)).collect(),
            (None, None) => vec![ALL.to_owned()],
        };
        let max = q.to.map_or("+inf".to_owned(), |t| t.0.to_string());
        let min = q.from.map_or("-inf".to_owned(), |f| f.0.to_string());
        let mut con = self.con.clone();
        let mut out = Vec::new();
        for k in keys {
            let ids: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&k)
                .arg(&max)
                .arg(&min)
                .arg("LIMIT")
                .arg(0)
                .arg(q.limit)
                .query_async(&mut con)
                .await
                .map_err(redis_down)?;
            if ids.is_empty() {
                continue;
            }
            let blobs: Vec<Option<Vec<u8>>> = con
                .mget(ids.iter().map(|i| key(i)).collect::<Vec<_>>())
                .await
                .map_err(redis_down)?;
            out.extend(
                blobs
                    .into_iter()
                    .flatten()
                    .filter_map(|b| rmp_serde::from_slice::<Log>(&b).ok())
                    .filter(|l| q.matches(l)),
            );
        }
        Ok(q.finish(out))
    }
}
