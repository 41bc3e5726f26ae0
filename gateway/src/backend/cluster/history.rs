//! The cluster's history records — maintenance logs and stock movements —
//! in Redis, where every node (and one that joins later) reads them: every
//! node that applies the stream entry writing one stores it (the same bytes
//! each time, so a second write changes nothing) before it answers anyone
//! waiting on that entry. Keys per kind: the record by id; sorted sets by
//! time over all records and per index key (a schedule, a property, a
//! part, a location), for listings newest first.

use engine::Millis;
use persistence::history::Record;
use redis::AsyncCommands;

use super::{redis_down, Cluster};
use crate::error::ApiError;

fn item<R: Record>(id: &str) -> String {
    format!("dispatchd:{}:{id}", R::NAME)
}
fn all<R: Record>() -> String {
    format!("dispatchd:{}s:all", R::NAME)
}
fn keyed<R: Record>(k: &str) -> String {
    format!("dispatchd:{}s:{k}", R::NAME)
}

impl Cluster {
    /// Stores records; retried until Redis takes them (the stream entry
    /// that wrote them is already applied here).
    pub(super) async fn history_put<R: Record>(&self, records: &[R]) {
        if records.is_empty() {
            return;
        }
        let mut backoff = std::time::Duration::from_millis(50);
        loop {
            let mut p = redis::pipe();
            p.atomic();
            for r in records {
                let bytes = rmp_serde::to_vec_named(r).expect("records serialise");
                let at = r.at().0;
                p.set(item::<R>(r.id()), bytes).ignore();
                p.zadd(all::<R>(), r.id(), at).ignore();
                for k in r.keys() {
                    p.zadd(keyed::<R>(&k), r.id(), at).ignore();
                }
            }
            let mut con = self.con.clone();
            match p.query_async::<()>(&mut con).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "history write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }

    /// The record of kind `R` with this id.
    pub async fn history_get<R: Record>(&self, id: &str) -> Result<Option<R>, ApiError> {
        let mut con = self.con.clone();
        let bytes: Option<Vec<u8>> = con.get(item::<R>(id)).await.map_err(redis_down)?;
        Ok(bytes.and_then(|b| rmp_serde::from_slice(&b).ok()))
    }

    /// Records under any of `keys` (all when `None`), at `[from, to]`,
    /// kept by `keep`, newest first, at most `limit`.
    pub async fn history<R: Record>(
        &self,
        keys: Option<&[String]>,
        from: Option<Millis>,
        to: Option<Millis>,
        limit: usize,
        keep: impl Fn(&R) -> bool,
    ) -> Result<Vec<R>, ApiError> {
        let sets: Vec<String> = match keys {
            Some(k) => k.iter().map(|k| keyed::<R>(k)).collect(),
            None => vec![all::<R>()],
        };
        let max = to.map_or("+inf".to_owned(), |t| t.0.to_string());
        let min = from.map_or("-inf".to_owned(), |f| f.0.to_string());
        let mut con = self.con.clone();
        let mut out: Vec<R> = Vec::new();
        for set in sets {
            // Pages until `limit` are kept or the set is done.
            let mut offset = 0usize;
            let mut found = 0usize;
            while found < limit && offset < 20_000 {
                let ids: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
                    .arg(&set)
                    .arg(&max)
                    .arg(&min)
                    .arg("LIMIT")
                    .arg(offset)
                    .arg(500)
                    .query_async(&mut con)
                    .await
                    .map_err(redis_down)?;
                if ids.is_empty() {
                    break;
                }
                offset += ids.len();
                let blobs: Vec<Option<Vec<u8>>> = con
                    .mget(ids.iter().map(|i| item::<R>(i)).collect::<Vec<_>>())
                    .await
                    .map_err(redis_down)?;
                for r in blobs
                    .into_iter()
                    .flatten()
                    .filter_map(|b| rmp_serde::from_slice::<R>(&b).ok())
                {
                    if found < limit && keep(&r) {
                        out.push(r);
                        found += 1;
                    }
                }
            }
        }
        out.sort_by(|a, b| (b.at(), b.id()).cmp(&(a.at(), a.id())));
        out.dedup_by(|a, b| a.id() == b.id());
        out.truncate(limit);
        Ok(out)
    }
}
