//! The cluster's outbox, in Redis: every node that applies a
//! `NotificationQueued` entry of the stream writes its deliveries (only the
//! first write of each counts), before it answers anyone waiting on that
//! entry — so a notification is in the outbox once its command is
//! acknowledged, whichever node dies. The node holding the timer lease
//! sends them; a claim (the entry's due time moved ahead, atomically) makes
//! a delivery taken by one node invisible to the others until it lapses.
//!
//! Keys: the entry by id; sorted sets of pending entries by due time, of
//! each status by event time (listings, newest first), and of ended entries
//! by end time (pruning).

use engine::notify::outbox::{DeliveryRecord, DeliveryStatus};
use engine::Millis;
use redis::AsyncCommands;

use super::{redis_down, Cluster};
use crate::error::ApiError;

const DUE: &str = "dispatchd:dlv:due";
const ENDED: &str = "dispatchd:dlv:ended";
/// Most entries one listing looks at.
const SCAN_LIMIT: isize = 20_000;
const PAGE: isize = 500;

fn key(id: &str) -> String {
    format!("dispatchd:dlv:{id}")
}
fn status_key(s: DeliveryStatus) -> String {
    format!("dispatchd:dlv:st:{}", s.name())
}

/// `KEYS`: entry, due, pending; `ARGV`: bytes, due at, event time, id.
const ENQUEUE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  return 1
end
return 0";

/// `KEYS[1]` due; `ARGV`: now, claim until, limit. Returns the claimed ids.
const TAKE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids";

fn decode(b: &[u8]) -> Option<DeliveryRecord> {
    rmp_serde::from_slice(b).ok()
}

impl Cluster {
    /// Writes new deliveries (first write wins). Retried until Redis takes
    /// them: the stream entry that raised them is already applied here.
    pub(super) async fn outbox_enqueue(&self, records: &[DeliveryRecord]) {
        if records.is_empty() {
            return;
        }
        let pending = status_key(DeliveryStatus::Pending);
        let mut backoff = std::time::Duration::from_millis(50);
        loop {
            // EVAL, not EVALSHA: a pipeline does not load scripts on NOSCRIPT.
            let mut p = redis::pipe();
            for r in records {
                let bytes = rmp_serde::to_vec_named(r).expect("records serialise");
                p.cmd("EVAL")
                    .arg(ENQUEUE)
                    .arg(3)
                    .arg(key(&r.id))
                    .arg(DUE)
                    .arg(&pending)
                    .arg(bytes)
                    .arg(r.next_at.0)
                    .arg(r.at.0)
                    .arg(&r.id)
                    .ignore();
            }
            let mut con = self.con.clone();
            match p.query_async::<()>(&mut con).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }

    pub async fn outbox_take_due(
        &self,
        now: Millis,
        until: Millis,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        let mut con = self.con.clone();
        let ids: Vec<String> = redis::Script::new(TAKE)
            .key(DUE)
            .arg(now.0)
            .arg(until.0)
            .arg(limit)
            .invoke_async(&mut con)
            .await
            .map_err(redis_down)?;
        self.outbox_mget(&ids).await
    }

    async fn outbox_mget(&self, ids: &[String]) -> Result<Vec<DeliveryRecord>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let keys: Vec<String> = ids.iter().map(|i| key(i)).collect();
        let blobs: Vec<Option<Vec<u8>>> = con.mget(keys).await.map_err(redis_down)?;
        Ok(blobs
            .into_iter()
            .flatten()
            .filter_map(|b| decode(&b))
            .collect())
    }

    /// Stores an entry as it now is, moving its index entries.
    pub async fn outbox_save(&self, r: &DeliveryRecord) -> Result<(), ApiError> {
        let bytes = rmp_serde::to_vec_named(r).expect("records serialise");
        let mut p = redis::pipe();
        p.atomic();
        p.set(key(&r.id), bytes).ignore();
        p.zrem(DUE, &r.id).ignore();
        p.zrem(ENDED, &r.id).ignore();
        for s in DeliveryStatus::ALL {
            p.zrem(status_key(s), &r.id).ignore();
        }
        p.zadd(status_key(r.status), &r.id, r.at.0).ignore();
        if r.status == DeliveryStatus::Pending {
            p.zadd(DUE, &r.id, r.next_at.0).ignore();
        } else {
            p.zadd(ENDED, &r.id, r.next_at.0).ignore();
        }
        let mut con = self.con.clone();
        p.query_async::<()>(&mut con).await.map_err(redis_down)
    }

    pub async fn outbox_get(&self, id: &str) -> Result<Option<DeliveryRecord>, ApiError> {
        let mut con = self.con.clone();
        let b: Option<Vec<u8>> = con.get(key(id)).await.map_err(redis_down)?;
        Ok(b.and_then(|b| decode(&b)))
    }

    pub async fn outbox_list(
        &self,
        status: Option<DeliveryStatus>,
        endpoint: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, ApiError> {
        let statuses: Vec<DeliveryStatus> = match status {
            Some(s) => vec![s],
            None => DeliveryStatus::ALL.to_vec(),
        };
        let mut con = self.con.clone();
        let mut out = Vec::new();
        for s in statuses {
            let mut start = 0;
            let mut found = 0;
            while start < SCAN_LIMIT && found < limit {
                let ids: Vec<String> = con
                    .zrevrange(status_key(s), start, start + PAGE - 1)
                    .await
                    .map_err(redis_down)?;
                if ids.is_empty() {
                    break;
                }
                for r in self.outbox_mget(&ids).await? {
                    if endpoint.is_none_or(|ep| r.endpoint.as_deref() == Some(ep)) {
                        out.push(r);
                        found += 1;
                        if found >= limit {
                            break;
                        }
                    }
                }
                start += PAGE;
            }
        }
        out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }

    pub async fn outbox_prune(&self, before: Millis, limit: usize) -> Result<usize, ApiError> {
        let mut con = self.con.clone();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(ENDED)
            .arg("-inf")
            .arg(format!("({}", before.0))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut con)
            .await
            .map_err(redis_down)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut p = redis::pipe();
        for id in &ids {
            p.del(key(id)).ignore();
            p.zrem(ENDED, id).ignore();
            for s in DeliveryStatus::ALL {
                p.zrem(status_key(s), id).ignore();
            }
        }
        p.query_async::<()>(&mut con).await.map_err(redis_down)?;
        Ok(ids.len())
    }

    pub async fn outbox_pending(&self) -> Result<usize, ApiError> {
        let mut con = self.con.clone();
        con.zcard(DUE).await.map_err(redis_down)
    }
}
