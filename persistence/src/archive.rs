//! The archive: finished jobs that left the engine's memory, on disk and
//! indexed for the queries the API answers — by id, by resident, by worker
//! and by creation order (newest first). Written by the log writer when it
//! logs a `JobArchived` event, and flushed *before* the log, so a durable
//! `JobArchived` always has its job here (a crash in between leaves the job
//! both here and live after replay; the live copy wins and a later archive
//! pass overwrites this one).

use std::path::Path;

use engine::{Job, JobId, JobQuery, JobStatus, Viewer};

use crate::codec;
use crate::store::open_db_with;
use crate::StoreError;

/// Most archived entries one listing looks at (a status filter skips some).
const SCAN_LIMIT: usize = 20_000;

pub struct Archive {
    db: sled::Db,
    /// id → job.
    jobs: sled::Tree,
    /// resident \0 seq → id.
    by_resident: sled::Tree,
    /// worker \0 seq → id (the job's final worker).
    by_worker: sled::Tree,
    /// seq → id.
    by_seq: sled::Tree,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn owner_key(owner: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(owner.len() + 9);
    k.extend_from_slice(owner.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn owner_prefix(owner: &str) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k
}

impl Archive {
    pub fn open(dir: &Path) -> Result<Archive, StoreError> {
        // Reads are point lookups and short listings: a small cache (a larger
        // one measurably raised the soak's RSS, BENCHMARKS.md).
        let db = open_db_with(dir, 8 << 20)?;
        Ok(Archive {
            jobs: db.open_tree("jobs").map_err(io)?,
            by_resident: db.open_tree("by_resident").map_err(io)?,
            by_worker: db.open_tree("by_worker").map_err(io)?,
            by_seq: db.open_tree("by_seq").map_err(io)?,
            db,
        })
    }

    /// Stores (or replaces) a finished job. Not durable until [`Archive::flush`].
    pub fn put(&self, job: &Job) -> Result<(), StoreError> {
        let id = job.id.as_str().as_bytes();
        self.jobs.insert(id, codec::encode(job)).map_err(io)?;
        self.by_resident
            .insert(owner_key(job.resident_id.as_str(), job.seq), id)
            .map_err(io)?;
        if let Some(w) = &job.worker_id {
            self.by_worker
                .insert(owner_key(w.as_str(), job.seq), id)
                .map_err(io)?;
        }
        self.by_seq.insert(job.seq.to_be_bytes(), id).map_err(io)?;
        Ok(())
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }

    pub fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.jobs
            .get(id.as_str().as_bytes())
            .map_err(io)?
            .map(|b| codec::decode(&b).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The archived job if `viewer` may see it (else `None`, as for no job).
    pub fn job_for(&self, id: &JobId, viewer: &Viewer) -> Result<Option<Job>, StoreError> {
        Ok(self.get(id)?.filter(|j| viewer.may_see(j)))
    }

    /// Archived jobs for a listing: the viewer's, newest first, with the
    /// status asked for, at most `q.limit`.
    pub fn list(&self, q: &JobQuery) -> Result<Vec<Job>, StoreError> {
        if q.status.is_some_and(|s| {
            !matches!(
                s,
                JobStatus::Completed | JobStatus::Cancelled | JobStatus::Unmatched
            )
        }) {
            return Ok(Vec::new()); // only finished jobs are archived
        }
        let ids: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match &q.viewer
        {
            Viewer::Resident(r) => {
                Box::new(self.by_resident.scan_prefix(owner_prefix(r.as_str())).rev())
            }
            Viewer::Worker(w) => {
                Box::new(self.by_worker.scan_prefix(owner_prefix(w.as_str())).rev())
            }
            Viewer::Ops => Box::new(self.by_seq.iter().rev()),
        };
        let mut out = Vec::new();
        for entry in ids.take(SCAN_LIMIT) {
            let (_, id) = entry.map_err(io)?;
            let id = JobId::from(String::from_utf8_lossy(&id).as_ref());
            let Some(job) = self.get(&id)? else { continue };
            if q.status.is_none_or(|s| job.status == s) && q.viewer.lists(&job) {
                out.push(job);
                if out.len() >= q.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Jobs archived (for stats and tests).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}
