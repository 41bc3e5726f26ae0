//! The archive: finished jobs that left the engine's memory, on disk and
//! indexed for the queries the API answers — by id, by resident, by worker
//! and by creation order (newest first). Written by the log writer when it
//! logs a `JobArchived` event, and committed *before* the log is flushed, so
//! a durable `JobArchived` always has its job here (a crash in between leaves
//! the job both here and live after replay; the live copy wins and a later
//! archive pass overwrites this one).
//!
//! It lives in a redb file (`archive.redb`): a B-tree with a bounded page
//! cache, so the server's memory does not grow with the history on disk
//! (sled, used before, keeps per-page metadata in RAM: ≈ 85 MiB for the
//! first 100 000 jobs and more after — BENCHMARKS.md, the soak). A data
//! directory from before (a sled `archive/` directory) is copied over once
//! at open.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::{Job, JobId, JobQuery, JobStatus, Viewer};
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use crate::codec;
use crate::StoreError;

/// Most archived entries one listing looks at (a status filter skips some).
const SCAN_LIMIT: usize = 20_000;
/// The page cache: reads are point lookups and short listings.
const CACHE_BYTES: usize = 16 << 20;

/// id → job.
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
/// (resident, seq) → id.
const BY_RESIDENT: TableDefinition<(&str, u64), &str> = TableDefinition::new("by_resident");
/// (worker, seq) → id (the job's final worker).
const BY_WORKER: TableDefinition<(&str, u64), &str> = TableDefinition::new("by_worker");
/// seq → id.
const BY_SEQ: TableDefinition<u64, &str> = TableDefinition::new("by_seq");

/// A job waiting for the next commit, encoded.
struct Pending {
    id: String,
    resident: String,
    worker: Option<String>,
    seq: u64,
    bytes: Vec<u8>,
}

impl Pending {
    fn of(job: &Job) -> Pending {
        Pending {
            id: job.id.as_str().to_owned(),
            resident: job.resident_id.as_str().to_owned(),
            worker: job.worker_id.as_ref().map(|w| w.as_str().to_owned()),
            seq: job.seq,
            bytes: codec::encode(job),
        }
    }
}

pub struct Archive {
    db: Database,
    /// Put since the last commit (written by [`Archive::flush`]).
    pending: Mutex<Vec<Pending>>,
    /// History records (logs, movements) put since the last commit.
    pending_records: Mutex<Vec<crate::history::Pending>>,
}

pub(crate) fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("redb: {e}"))
}

/// Opens (or creates) the redb file, waiting briefly for a lock that a
/// store just dropped in this process may still hold. A new file is made
/// whole under a temporary name and renamed into place, so a crash while
/// creating it never leaves a half-written file behind.
pub(crate) fn open_file(path: &Path) -> Result<Database, StoreError> {
    if !path.exists() {
        let tmp = path.with_extension("redb.new");
        let _ = std::fs::remove_file(&tmp);
        let db = Database::builder().create(&tmp).map_err(io)?;
        db.begin_write().map_err(io)?.commit().map_err(io)?;
        drop(db);
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Database::builder().set_cache_size(CACHE_BYTES).create(path) {
            Ok(db) => return Ok(db),
            Err(DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io(e)),
        }
    }
}

impl Archive {
    /// Opens the archive in `dir` (its file is `dir/../archive.redb` beside
    /// the old sled directory `dir`, which is migrated once if present).
    pub fn open(dir: &Path) -> Result<Archive, StoreError> {
        let file = dir.with_extension("redb");
        let archive = Archive {
            db: open_file(&file)?,
            pending: Mutex::new(Vec::new()),
            pending_records: Mutex::new(Vec::new()),
        };
        // Every table exists from the start, so reads never meet a missing one.
        let tx = archive.db.begin_write().map_err(io)?;
        tx.open_table(JOBS).map_err(io)?;
        tx.open_table(BY_RESIDENT).map_err(io)?;
        tx.open_table(BY_WORKER).map_err(io)?;
        tx.open_table(BY_SEQ).map_err(io)?;
        crate::history::create_tables(&tx)?;
        tx.commit().map_err(io)?;
        if dir.is_dir() {
            archive.migrate_from_sled(dir)?;
        }
        Ok(archive)
    }

    /// Copies a sled archive (the format before redb) in, then moves its
    /// directory aside; a crash in between copies it again (puts replace).
    fn migrate_from_sled(&self, dir: &Path) -> Result<(), StoreError> {
        let old = crate::store::open_db_with(dir, 8 << 20)?;
        let jobs = old.open_tree("jobs").map_err(io)?;
        let mut n = 0usize;
        for kv in jobs.iter() {
            let (_, v) = kv.map_err(io)?;
            let job: Job = codec::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.put(&job)?;
            n += 1;
            if n.is_multiple_of(10_000) {
                self.flush()?;
            }
        }
        self.flush()?;
        drop(jobs);
        drop(old);
        let aside = dir.with_extension("sled-migrated");
        std::fs::rename(dir, &aside).map_err(io)?;
        tracing::info!(jobs = n, moved_to = %aside.display(), "sled archive migrated to redb");
        Ok(())
    }

    /// Stores (or replaces) a finished job. Not durable, nor readable,
    /// until [`Archive::flush`].
    pub fn put(&self, job: &Job) -> Result<(), StoreError> {
        self.pending
            .lock()
            .expect("archive pending")
            .push(Pending::of(job));
        Ok(())
    }

    /// Stores a history record (a maintenance log, a stock movement)
    /// written by event `seq` (the same record again replaces it). Not
    /// durable, nor readable, until [`Archive::flush`].
    pub fn put_record<R: crate::history::Record>(&self, seq: u64, r: &R) {
        self.pending_records
            .lock()
            .expect("archive pending")
            .push(crate::history::Pending::of(seq, r));
    }

    /// Stores what an event written by `seq` writes (see [`crate::history::written`]).
    pub fn put_written(&self, seq: u64, w: &crate::history::Written<'_>) {
        use crate::history::Written;
        match w {
            Written::Log(l) => self.put_record(seq, *l),
            Written::Movement(m) => self.put_record(seq, *m),
            Written::Attachment(a) => self.put_record(seq, *a),
            Written::Ref(r) => self.put_record(seq, r),
            Written::PaymentRef(r) => self.put_record(seq, r),
        }
    }

    /// Commits every put so far in one durable transaction.
    pub fn flush(&self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut *self.pending.lock().expect("archive pending"));
        let records = std::mem::take(&mut *self.pending_records.lock().expect("archive pending"));
        if batch.is_empty() && records.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        // A crash never makes the next open walk the whole file.
        tx.set_quick_repair(true);
        {
            let mut jobs = tx.open_table(JOBS).map_err(io)?;
            let mut by_resident = tx.open_table(BY_RESIDENT).map_err(io)?;
            let mut by_worker = tx.open_table(BY_WORKER).map_err(io)?;
            let mut by_seq = tx.open_table(BY_SEQ).map_err(io)?;
            for p in &batch {
                jobs.insert(p.id.as_str(), p.bytes.as_slice()).map_err(io)?;
                by_resident
                    .insert((p.resident.as_str(), p.seq), p.id.as_str())
                    .map_err(io)?;
                if let Some(w) = &p.worker {
                    by_worker
                        .insert((w.as_str(), p.seq), p.id.as_str())
                        .map_err(io)?;
                }
                by_seq.insert(p.seq, p.id.as_str()).map_err(io)?;
            }
        }
        crate::history::write(&tx, &records)?;
        tx.commit().map_err(io)
    }

    /// Removes the history records of events after `seq` (lost with the
    /// log's tail: never acknowledged). Returns how many.
    pub fn drop_records_after(&self, seq: u64) -> Result<usize, StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        let n = crate::history::drop_after(&tx, seq)?;
        tx.commit().map_err(io)?;
        Ok(n)
    }

    /// History records of kind `R`: those under any of `keys` (all when
    /// `None`), at `[from, to]`, that `keep` admits, newest first, at most
    /// `limit`.
    pub fn records<R: crate::history::Record>(
        &self,
        keys: Option<&[String]>,
        from: Option<engine::Millis>,
        to: Option<engine::Millis>,
        limit: usize,
        keep: impl Fn(&R) -> bool,
    ) -> Result<Vec<R>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        crate::history::read(&tx, keys, from, to, limit, keep)
    }

    /// The history record of kind `R` with this id.
    pub fn record<R: crate::history::Record>(&self, id: &str) -> Result<Option<R>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        crate::history::get(&tx, id)
    }

    pub fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let jobs = tx.open_table(JOBS).map_err(io)?;
        let found = jobs.get(id.as_str()).map_err(io)?;
        found
            .map(|b| codec::decode(b.value()).map_err(|e| StoreError::Corrupt(e.to_string())))
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
        let tx = self.db.begin_read().map_err(io)?;
        let jobs = tx.open_table(JOBS).map_err(io)?;
        let mut out = Vec::new();
        let mut take = |id: &str| -> Result<bool, StoreError> {
            let Some(bytes) = jobs.get(id).map_err(io)? else {
                return Ok(false);
            };
            let job: Job =
                codec::decode(bytes.value()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if q.status.is_none_or(|s| job.status == s) && q.viewer.lists(&job) {
                out.push(job);
            }
            Ok(out.len() >= q.limit)
        };
        match &q.viewer {
            Viewer::Resident(r) => {
                let t = tx.open_table(BY_RESIDENT).map_err(io)?;
                owned_range(&t, r.as_str(), &mut take)?;
            }
            Viewer::Worker(w) => {
                let t = tx.open_table(BY_WORKER).map_err(io)?;
                owned_range(&t, w.as_str(), &mut take)?;
            }
            Viewer::Ops => {
                let t = tx.open_table(BY_SEQ).map_err(io)?;
                for entry in t.iter().map_err(io)?.rev().take(SCAN_LIMIT) {
                    let (_, id) = entry.map_err(io)?;
                    if take(id.value())? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Jobs archived (for stats and tests).
    pub fn len(&self) -> usize {
        let count = || -> Result<u64, StoreError> {
            let tx = self.db.begin_read().map_err(io)?;
            tx.open_table(JOBS).map_err(io)?.len().map_err(io)
        };
        count().unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One owner's index entries, newest first, fed to `take` until it says stop.
fn owned_range(
    t: &redb::ReadOnlyTable<(&str, u64), &str>,
    owner: &str,
    take: &mut impl FnMut(&str) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let range = t.range((owner, 0u64)..=(owner, u64::MAX)).map_err(io)?;
    for entry in range.rev().take(SCAN_LIMIT) {
        let (_, id) = entry.map_err(io)?;
        if take(id.value())? {
            break;
        }
    }
    Ok(())
}
