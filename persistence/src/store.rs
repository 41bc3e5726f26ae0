//! The sled store: one writer thread that group-commits the log, the
//! accounts trees, and the snapshot and compaction calls around it.
//!
//! ## Appends
//! The engine an opened store returns is attached to it: every event the
//! engine emits is pushed onto the writer's pending list as it is emitted,
//! under the engine lock that assigned its `seq` ([`engine::EventSink`];
//! a push, no wake-up). So the list — and the log — hold the events in
//! engine order with no gaps, and nobody re-sorts anything. A caller then
//! asks for durability over the writer's channel: "every event up to `seq`
//! is durable" ([`SledStore::durable_through`], or
//! [`SledStore::append_with`] for the events its command returned). Each
//! round, the writer takes the queued requests, then the pending events
//! (so every requester's events are among them), writes, flushes sled once (fsync) and
//! then answers the waiters whose `seq` it reached: durability costs one
//! flush per batch, and a caller is answered only once its events *and
//! everything before them* are durable (an acknowledged accept never
//! survives without its offer). After each flush the written events go, in
//! that same order, to the consumer set with [`SledStore::on_durable`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::{Engine, EngineConfig, Event, Millis};

use crate::account::Account;
use crate::archive::Archive;
use crate::codec::{self, key, seq_of, Entry};
use crate::{snapshot, StoreError};

mod recovery;
mod writer;

use recovery::recover;
pub(crate) use recovery::{open_db, open_db_with};
use writer::{write_loop, LogSink};

/// Called once with the outcome of an append: the last engine sequence
/// number now durable, or why not.
pub type Done = Box<dyn FnOnce(Result<u64, StoreError>) + Send>;
/// Called once with the outcome of an account creation.
pub type AccountDone = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Take a snapshot after this many logged events (0: never by count).
    pub snapshot_every_events: u64,
    /// Take a snapshot when this much time has passed since the last one.
    pub snapshot_every: Duration,
    /// Snapshot files kept on disk.
    pub keep_snapshots: usize,
    /// Most requests one flush covers.
    pub max_batch: usize,
    /// Longest a waiter waits for a `seq` the engine never emitted (a bug)
    /// before it is failed rather than left hanging.
    pub wait_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            snapshot_every_events: 100_000,
            snapshot_every: Duration::from_secs(300),
            keep_snapshots: 2,
            max_batch: 4096,
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// The engine sequence number the loaded snapshot covers.
    pub snapshot_seq: Option<u64>,
    /// Events replayed on top of it.
    pub replayed: u64,
    /// Log entries dropped from a corrupt or torn tail.
    pub dropped: u64,
    /// Offers open at the crash, put back to searching (already logged):
    /// their `OfferRevoked` events, for the sockets to hear of.
    pub requeued: Vec<Event>,
}

enum Request {
    /// Answer once these (already pushed) events are durable.
    Events(Vec<Event>, Done),
    /// Answer once every event up to this sequence number is durable.
    Barrier(u64, Done),
    Account(Account, AccountDone),
    /// Replace an existing account (same id and email), durably.
    AccountUpdate(Account, AccountDone),
    /// Start a new log epoch; answers with its number.
    Rotate(Done),
}

/// One epoch of the log: its own sled database under `log/`, so that a
/// snapshot retires a whole epoch by deleting its directory. (Removing a
/// million keys from one tree, or dropping a tree, left sled 0.34 taking
/// seconds to open afterwards; a deleted directory costs nothing.)
struct Epoch {
    n: u64,
    db: sled::Db,
    dir: PathBuf,
}

/// Receives durable events in engine order (see [`SledStore::on_durable`]).
pub type DurableSink = Box<dyn FnMut(Vec<Event>) + Send>;

struct Shared {
    /// Events the engine emitted that the writer has not taken yet.
    pending: Arc<Mutex<Vec<Event>>>,
    /// Finished jobs that left memory.
    archive: Archive,
    /// Notification deliveries (written with the log, see `outbox.rs`).
    outbox: crate::Outbox,
    /// Where durable events go, in log order, after each group commit.
    on_durable: Mutex<Option<DurableSink>>,
    /// Accounts live in their own database, never rotated.
    accounts_db: sled::Db,
    /// Open log epochs, oldest first; the writer appends to the last.
    epochs: Mutex<Vec<Epoch>>,
    log_dir: PathBuf,
    accounts: sled::Tree,
    emails: sled::Tree,
    snapshot_dir: PathBuf,
    /// Events logged since the last snapshot.
    since_snapshot: AtomicU64,
    /// Flushes (group commits) done, for stats and benchmarks.
    flushes: AtomicU64,
    /// Highest engine sequence number known to be durable.
    durable: AtomicU64,
    last_snapshot: Mutex<Instant>,
    /// One snapshot at a time.
    snapshotting: Mutex<()>,
}

pub struct SledStore {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    opts: StoreOptions,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, recovers the engine from the
    /// newest snapshot and the log after it, puts open offers back to
    /// searching (logged), and starts the writer.
    pub fn open(
        dir: &Path,
        cfg: EngineConfig,
        opts: StoreOptions,
        now: Millis,
    ) -> Result<(SledStore, Engine, RecoveryReport), StoreError> {
        std::fs::create_dir_all(dir)?;
        let snapshot_dir = dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_dir)?;
        let log_dir = dir.join("log");
        std::fs::create_dir_all(&log_dir)?;
        let accounts_db = open_db(&dir.join("accounts"))?;
        let shared = Arc::new(Shared {
            pending: Arc::new(Mutex::new(Vec::new())),
            archive: Archive::open(&dir.join("archive"))?,
            outbox: crate::Outbox::open(&dir.join("outbox.redb"))?,
            on_durable: Mutex::new(None),
            accounts: accounts_db.open_tree("accounts").map_err(io)?,
            emails: accounts_db.open_tree("emails").map_err(io)?,
            accounts_db,
            epochs: Mutex::new(Vec::new()),
            log_dir,
            snapshot_dir,
            since_snapshot: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            last_snapshot: Mutex::new(Instant::now()),
            snapshotting: Mutex::new(()),
        });
        let (engine, mut report, next_log) = recover(&shared, cfg)?;
        shared.durable.store(engine.last_seq(), Ordering::Release);
        // The entries of every replayed notification are written again (an
        // entry already there is kept), durably; then those whose
        // notification was lost with the log's tail go.
        shared.outbox.flush()?;
        shared.outbox.sync()?;
        let phantom = shared.outbox.drop_after(engine.last_seq())?;
        if phantom > 0 {
            tracing::warn!(
                entries = phantom,
                "outbox entries for events lost with the log's tail removed"
            );
        }
        shared.outbox.release_claims()?;
        let phantom = shared.archive.drop_records_after(engine.last_seq())?;
        if phantom > 0 {
            tracing::warn!(
                records = phantom,
                "logs and movements of events lost with the log's tail removed"
            );
        }
        let (tx, rx) = mpsc::channel();
        let writer = {
            let shared = shared.clone();
            let next_event = engine.last_seq() + 1;
            let opts = opts.clone();
            std::thread::Builder::new()
                .name("dispatchd-log-writer".into())
                .spawn(move || write_loop(shared, rx, next_log, next_event, opts))?
        };
        let store = SledStore {
            shared,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            opts,
        };
        engine.attach(Arc::new(LogSink(store.shared.pending.clone())));
        let requeued = engine.requeue_offers(now);
        if !requeued.is_empty() {
            store.append(requeued.clone())?;
        }
        report.requeued = requeued;
        Ok((store, engine, report))
    }

    /// Hands a request to the writer; gives it back if the writer is gone
    /// (so its callback can still be answered).
    #[allow(clippy::result_large_err)]
    fn send(&self, r: Request) -> Result<(), Request> {
        match self.tx.lock().expect("tx lock").as_ref() {
            Some(tx) => tx.send(r).map_err(|e| e.0),
            None => Err(r),
        }
    }

    /// `done` runs once `events` — which the engine already pushed to the
    /// log — and every event before them are durable.
    pub fn append_with(&self, events: Vec<Event>, done: Done) {
        if events.is_empty() {
            return done(Ok(0));
        }
        if let Err(Request::Events(_, done)) = self.send(Request::Events(events, done)) {
            done(Err(StoreError::Closed));
        }
    }

    /// Hands every event written from now on to `sink`, once durable, in
    /// engine order and without gaps — the one order the log has, so
    /// consumers (sockets, metrics) never re-sort. Called on the writer
    /// thread after each group commit: `sink` must not block.
    pub fn on_durable(&self, sink: DurableSink) {
        *self.shared.on_durable.lock().expect("on_durable") = Some(sink);
    }

    /// Finished jobs that left the engine (see [`Archive`]).
    pub fn archive(&self) -> &Archive {
        &self.shared.archive
    }

    /// Notification deliveries (see [`crate::Outbox`]).
    pub fn outbox(&self) -> &crate::Outbox {
        &self.shared.outbox
    }

    /// Highest engine sequence number known to be durable.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// `done` runs once every event up to `seq` is durable — for an answer
    /// that reports state its own command did not change (a duplicate, a
    /// refusal, a read), which must not go out before that state is safe.
    pub fn durable_through(&self, seq: u64, done: Done) {
        if seq <= self.durable_seq() {
            return done(Ok(seq));
        }
        if let Err(Request::Barrier(_, done)) = self.send(Request::Barrier(seq, done)) {
            done(Err(StoreError::Closed));
        }
    }

    /// [`SledStore::durable_through`], blocking until it answers.
    pub fn durable_through_blocking(&self, seq: u64) -> Result<u64, StoreError> {
        wait(|done| self.durable_through(seq, done))
    }

    /// [`SledStore::append_with`], waiting for the outcome.
    pub fn append(&self, events: Vec<Event>) -> Result<u64, StoreError> {
        wait(|done| self.append_with(events, done))
    }

    /// Creates an account, durably; `EmailTaken` if the email is in use.
    pub fn create_account_with(&self, account: Account, done: AccountDone) {
        if let Err(Request::Account(_, done)) = self.send(Request::Account(account, done)) {
            done(Err(StoreError::Closed));
        }
    }

    pub fn create_account(&self, account: Account) -> Result<(), StoreError> {
        wait(|done| self.create_account_with(account, done))
    }

    /// Replaces an account's stored fields (name, skills); its id and
    /// email stay. `Conflict` when no account has that id and email.
    pub fn update_account_with(&self, account: Account, done: AccountDone) {
        if let Err(Request::AccountUpdate(_, done)) =
            self.send(Request::AccountUpdate(account, done))
        {
            done(Err(StoreError::Closed));
        }
    }

    pub fn update_account(&self, account: Account) -> Result<(), StoreError> {
        wait(|done| self.update_account_with(account, done))
    }

    pub fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        match self.shared.accounts.get(id.as_bytes()).map_err(io)? {
            Some(v) => Ok(Some(
                codec::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    pub fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        match self.shared.emails.get(email.as_bytes()).map_err(io)? {
            Some(id) => self.account(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Every account, for registering workers in the engine at start.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.shared
            .accounts
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(io)?;
                codec::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Writes a snapshot of `engine` and compacts the log it covers. Runs on
    /// the caller's thread; appends go on meanwhile.
    pub fn snapshot(&self, engine: &Engine) -> Result<u64, StoreError> {
        let _one = self.shared.snapshotting.lock().expect("snapshot lock");
        let before = self.shared.since_snapshot.load(Ordering::Acquire);
        // Every event in an epoch before the new one was emitted before this
        // snapshot is taken, so the snapshot covers it.
        let current = wait(|done: Done| {
            if let Err(Request::Rotate(done)) = self.send(Request::Rotate(done)) {
                done(Err(StoreError::Closed));
            }
        })?;
        let snap = engine.snapshot();
        let seq = snap.last_seq;
        snapshot::write(&self.shared.snapshot_dir, &snap)?;
        drop(snap);
        retire_epochs_before(&self.shared, current)?;
        snapshot::prune(&self.shared.snapshot_dir, self.opts.keep_snapshots)?;
        self.shared
            .since_snapshot
            .fetch_sub(before, Ordering::AcqRel);
        *self.shared.last_snapshot.lock().expect("snapshot clock") = Instant::now();
        tracing::info!(seq, "snapshot written");
        Ok(seq)
    }

    /// Takes a snapshot if the policy says one is due.
    pub fn maybe_snapshot(&self, engine: &Engine) -> Result<Option<u64>, StoreError> {
        let by_count = self.opts.snapshot_every_events > 0
            && self.shared.since_snapshot.load(Ordering::Acquire)
                >= self.opts.snapshot_every_events;
        let by_time = self.shared.since_snapshot.load(Ordering::Acquire) > 0
            && self
                .shared
                .last_snapshot
                .lock()
                .expect("snapshot clock")
                .elapsed()
                >= self.opts.snapshot_every;
        if by_count || by_time {
            return self.snapshot(engine).map(Some);
        }
        Ok(None)
    }

    /// Group commits (fsyncs) so far.
    pub fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    /// Number of entries in the log (after compaction), for tests and stats.
    pub fn log_len(&self) -> usize {
        let epochs = self.shared.epochs.lock().expect("epochs");
        epochs.iter().map(|e| e.db.len()).sum()
    }

    /// Stops the writer after it has written and flushed everything queued.
    pub fn close(&self) {
        self.tx.lock().expect("tx lock").take();
        if let Some(h) = self.writer.lock().expect("writer lock").take() {
            let _ = h.join();
        }
    }
}

/// Calls `start` with a completion callback and blocks until it is called.
fn wait<T: Send + 'static>(
    start: impl FnOnce(Box<dyn FnOnce(Result<T, StoreError>) + Send>),
) -> Result<T, StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    start(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv().unwrap_or(Err(StoreError::Closed))
}

/// Runs the snapshot policy on its own thread, and takes a last snapshot
/// when stopped (clean shutdown).
pub struct Snapshotter {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Snapshotter {
    /// Checks the policy every `check` and snapshots when due.
    pub fn start(store: Arc<SledStore>, engine: Arc<Engine>, check: Duration) -> Snapshotter {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dispatchd-snapshots".into())
                .spawn(move || {
                    let (lock, cv) = &*stop;
                    let mut stopped = lock.lock().expect("snapshot stop");
                    loop {
                        let (guard, _) = cv.wait_timeout(stopped, check).expect("snapshot stop");
                        stopped = guard;
                        if *stopped {
                            break;
                        }
                        if let Err(e) = store.maybe_snapshot(&engine) {
                            tracing::error!(%e, "periodic snapshot failed");
                        }
                    }
                    drop(stopped);
                    if let Err(e) = store.snapshot(&engine) {
                        tracing::error!(%e, "final snapshot failed");
                    }
                })
                .expect("spawn snapshot thread")
        };
        Snapshotter {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the thread after a final snapshot.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().expect("snapshot stop") = true;
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn epoch_dir(log_dir: &Path, n: u64) -> PathBuf {
    log_dir.join(format!("{n:010}"))
}

fn new_epoch(log_dir: &Path, n: u64) -> Result<Epoch, StoreError> {
    let dir = epoch_dir(log_dir, n);
    let db = open_db(&dir)?;
    db.flush().map_err(io)?;
    std::fs::File::open(log_dir)?.sync_all()?;
    Ok(Epoch { n, db, dir })
}

/// Epoch directories, oldest first.
fn list_epochs(log_dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let path = entry?.path();
        if let Some(n) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
        {
            v.push((n, path));
        }
    }
    v.sort();
    Ok(v)
}

/// Deletes the epochs a snapshot made redundant.
fn retire_epochs_before(shared: &Shared, current: u64) -> Result<(), StoreError> {
    // The outbox entries of the events about to be forgotten must be on
    // disk: recovery can no longer write them again from the log.
    shared.outbox.sync()?;
    let old: Vec<Epoch> = {
        let mut epochs = shared.epochs.lock().expect("epochs");
        let at = epochs
            .iter()
            .position(|e| e.n >= current)
            .unwrap_or(epochs.len());
        let keep = epochs.split_off(at);
        std::mem::replace(&mut *epochs, keep)
    };
    let n = old.len();
    for e in old {
        drop(e.db);
        std::fs::remove_dir_all(&e.dir)?;
    }
    std::fs::File::open(&shared.log_dir)?.sync_all()?;
    tracing::debug!(retired = n, current, "log epochs retired");
    Ok(())
}
