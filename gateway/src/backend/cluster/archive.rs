//! The cluster's archive of finished jobs, in Redis where every node —
//! including one that joins later — can read it: the job by id, and sorted
//! sets (score: the job's creation number, the same on every node) by
//! resident, by final worker and over all jobs, for newest-first listings.

use engine::{Job, JobId, JobQuery, JobStatus, Viewer};
use redis::AsyncCommands;

use super::{redis_down, Cluster};
use crate::error::ApiError;

/// Most archived entries one listing looks at (a status filter skips some).
const SCAN_LIMIT: isize = 20_000;
const PAGE: isize = 500;

fn job_key(id: &str) -> String {
    format!("dispatchd:arch:job:{id}")
}
fn resident_key(r: &str) -> String {
    format!("dispatchd:arch:res:{r}")
}
fn worker_key(w: &str) -> String {
    format!("dispatchd:arch:wrk:{w}")
}
const ALL: &str = "dispatchd:arch:all";

impl Cluster {
    /// Writes finished jobs to the shared archive (before the `Archive`
    /// command that drops them from every node's memory).
    pub async fn archive_put(&self, jobs: &[Job]) -> Result<(), ApiError> {
        let mut p = redis::pipe();
        p.atomic();
        for j in jobs {
            let bytes = rmp_serde::to_vec_named(j).expect("jobs serialise");
            p.set(job_key(j.id.as_str()), bytes).ignore();
            p.zadd(resident_key(j.resident_id.as_str()), j.id.as_str(), j.seq)
                .ignore();
            if let Some(w) = &j.worker_id {
                p.zadd(worker_key(w.as_str()), j.id.as_str(), j.seq)
                    .ignore();
            }
            p.zadd(ALL, j.id.as_str(), j.seq).ignore();
        }
        let mut con = self.con.clone();
        p.query_async::<()>(&mut con).await.map_err(redis_down)
    }

    pub async fn archived_job(&self, id: &JobId) -> Result<Option<Job>, ApiError> {
        let mut con = self.con.clone();
        let bytes: Option<Vec<u8>> = con.get(job_key(id.as_str())).await.map_err(redis_down)?;
        Ok(bytes.and_then(|b| rmp_serde::from_slice(&b).ok()))
    }

    pub async fn archived_list(&self, q: &JobQuery) -> Result<Vec<Job>, ApiError> {
        if q.status.is_some_and(|s| {
            !matches!(
                s,
                JobStatus::Completed | JobStatus::Cancelled | JobStatus::Unmatched
            )
        }) {
            return Ok(Vec::new());
        }
        let key = match &q.viewer {
            Viewer::Resident(r) => resident_key(r.as_str()),
            Viewer::Worker(w) => worker_key(w.as_str()),
            Viewer::Ops => ALL.to_string(),
        };
        let mut con = self.con.clone();
        let mut out = Vec::new();
        let mut start = 0;
        while start < SCAN_LIMIT && out.len() < q.limit {
            let ids: Vec<String> = con
                .zrevrange(&key, start, start + PAGE - 1)
                .await
                .map_err(redis_down)?;
            if ids.is_empty() {
                break;
            }
            let keys: Vec<String> = ids.iter().map(|i| job_key(i)).collect();
            let blobs: Vec<Option<Vec<u8>>> = con.mget(keys).await.map_err(redis_down)?;
            for b in blobs.into_iter().flatten() {
                let Ok(job) = rmp_serde::from_slice::<Job>(&b) else {
                    continue;
                };
                if q.status.is_none_or(|s| job.status == s) && q.viewer.lists(&job) {
                    out.push(job);
                    if out.len() >= q.limit {
                        break;
                    }
                }
            }
            start += PAGE;
        }
        Ok(out)
    }
}
