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
    /// Offers open at the crash, put back to searching (already logged).
    pub requeued: u64,
}

enum Request {
    /// Answer once these (already pushed) events are durable.
    Events(Vec<Event>, Done),
    /// Answer once every event up to this sequence number is durable.
    Barrier(u64, Done),
    Account(Account, AccountDone),
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
        report.requeued = requeued.len() as u64;
        if !requeued.is_empty() {
            store.append(requeued)?;
        }
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

/// The engine's end of the log: pushes each event to the writer as the
/// engine emits it (under the engine's job lock, so in `seq` order).
///
/// Only a push onto a vector: no wake-up, no syscall under the engine's
/// lock. The writer takes the vector on every round, and every caller that
/// waits for durability sends its request after its events are in it.
/// (It holds only the list: an engine outliving its store keeps no
/// database open.)
struct LogSink(Arc<Mutex<Vec<Event>>>);

impl engine::EventSink for LogSink {
    fn push(&self, ev: &Event) {
        self.0.lock().expect("pending").push(ev.clone());
    }
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

const REPLAY_CHUNK: usize = 8192;

/// One log entry as the recovery reader saw it.
enum Scanned {
    Event(sled::IVec, u64, Event),
    Other(u64),
    Bad(sled::IVec, String),
    Failed(StoreError),
}

/// Reads and decodes the log from `start`, in batches, until the end or a bad entry.
fn scan_log(log: sled::Tree, tx: mpsc::SyncSender<Vec<Scanned>>) {
    let mut batch = Vec::with_capacity(1024);
    for kv in log.iter() {
        let item = match kv {
            Err(e) => Scanned::Failed(io(e)),
            Ok((k, v)) => match (seq_of(&k), codec::decode::<Entry>(&v)) {
                (None, _) => Scanned::Bad(k, "malformed key".into()),
                (Some(_), Err(e)) => Scanned::Bad(k, e.to_string()),
                (Some(s), Ok(Entry::Event(e))) => Scanned::Event(k, s, e),
                (Some(s), Ok(Entry::Account(_))) => Scanned::Other(s),
            },
        };
        let stop = matches!(item, Scanned::Bad(..) | Scanned::Failed(_));
        batch.push(item);
        if stop || batch.len() == 1024 {
            let sent = tx.send(std::mem::take(&mut batch)).is_ok();
            if !sent || stop {
                return;
            }
        }
    }
    let _ = tx.send(batch);
}

/// Opens sled, waiting a little for the file lock: a process that just
/// exited (or a store just dropped) may still hold it for a moment.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    // The log is written once and read at start: a small cache will do.
    open_db_with(path, 256 << 20)
}

/// Opens a sled database, waiting briefly for a lock a dead process held.
pub(crate) fn open_db_with(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cfg = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes);
        match cfg.open() {
            Ok(db) => return Ok(db),
            // sled reports a held file lock as an I/O error of its own wording.
            Err(sled::Error::Io(e))
                if e.to_string().contains("acquire lock") && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io(e)),
        }
    }
}

/// Loads the newest good snapshot, replays the log after it, and cuts the
/// log at the first entry that does not read back or does not follow.
fn recover(
    shared: &Shared,
    cfg: EngineConfig,
) -> Result<(Engine, RecoveryReport, u64), StoreError> {
    let snap = snapshot::load_latest(&shared.snapshot_dir)?;
    let mut report = RecoveryReport {
        snapshot_seq: snap.as_ref().map(|s| s.last_seq),
        ..RecoveryReport::default()
    };
    let engine = match &snap {
        Some(s) => Engine::restore(cfg, s).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        None => Engine::new(cfg).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    };
    drop(snap);
    let mut next_log = 1;
    let mut cut: Option<(usize, sled::IVec)> = None;
    // Replayed in chunks: one engine lock per chunk, not per event.
    let mut chunk: Vec<(usize, sled::IVec, Event)> = Vec::with_capacity(REPLAY_CHUNK);
    let flush_chunk = |chunk: &mut Vec<(usize, sled::IVec, Event)>,
                       report: &mut RecoveryReport|
     -> Option<(usize, sled::IVec)> {
        let result = engine.replay(chunk.iter().map(|(_, _, e)| e));
        let bad = match result {
            Ok(n) => {
                report.replayed += n;
                None
            }
            Err(err) => {
                // Everything before the refused event was applied.
                let stop = engine.last_seq();
                let (ep, k, e) = chunk
                    .iter()
                    .find(|(_, _, e)| e.seq > stop)
                    .expect("a refused event");
                report.replayed += chunk.iter().filter(|(_, _, e)| e.seq <= stop).count() as u64;
                tracing::warn!(seq = e.seq, %err, "log entry does not follow; cutting the log here");
                Some((*ep, k.clone()))
            }
        };
        chunk.clear();
        bad
    };
    let mut epochs = Vec::new();
    for (i, (n, dir)) in list_epochs(&shared.log_dir)?.into_iter().enumerate() {
        if cut.is_some() {
            // Everything after a cut goes, whole epochs included.
            std::fs::remove_dir_all(&dir)?;
            continue;
        }
        let db = open_db(&dir)?;
        // Reading and decoding run on a second thread, applying on this one.
        let (tx, rx) = mpsc::sync_channel::<Vec<Scanned>>(4);
        let tree: sled::Tree = (*db).clone();
        let reader = std::thread::spawn(move || scan_log(tree, tx));
        next_log = 1;
        'scan: for batch in rx {
            for item in batch {
                match item {
                    Scanned::Event(k, log_seq, e) => {
                        if e.seq > engine.last_seq() {
                            chunk.push((i, k, e));
                        }
                        if chunk.len() >= REPLAY_CHUNK {
                            if let Some(c) = flush_chunk(&mut chunk, &mut report) {
                                cut = Some(c);
                                break 'scan;
                            }
                        }
                        next_log = log_seq + 1;
                    }
                    Scanned::Other(log_seq) => next_log = log_seq + 1,
                    Scanned::Bad(k, why) => {
                        tracing::warn!(%why, "corrupt log entry; cutting the log here");
                        cut = Some((i, k));
                        break 'scan;
                    }
                    Scanned::Failed(e) => return Err(e),
                }
            }
        }
        // Dropping the receiver (on a cut) stops the reader.
        let _ = reader.join();
        if cut.is_none() && !chunk.is_empty() {
            cut = flush_chunk(&mut chunk, &mut report);
        }
        epochs.push(Epoch { n, db, dir });
    }
    if !chunk.is_empty() {
        if let Some(c) = flush_chunk(&mut chunk, &mut report) {
            cut = Some(cut.map_or(c.clone(), |old| old.min(c)));
        }
    }
    if let Some((i, from)) = cut {
        // Remove the bad entry and all after it; later epochs were already removed.
        for later in epochs.drain(i + 1..) {
            drop(later.db);
            std::fs::remove_dir_all(&later.dir)?;
        }
        let db = &epochs[i].db;
        let doomed: Vec<sled::IVec> = db
            .range(from.clone()..)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(io)?;
        report.dropped += doomed.len() as u64;
        for k in doomed {
            db.remove(k).map_err(io)?;
        }
        db.flush().map_err(io)?;
        next_log = seq_of(&from).unwrap_or(1).max(1);
    }
    if epochs.is_empty() {
        epochs.push(new_epoch(&shared.log_dir, 1)?);
        next_log = 1;
    }
    *shared.epochs.lock().expect("epochs") = epochs;
    Ok((engine, report, next_log))
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

fn write_loop(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    mut next_log: u64,
    mut next_event: u64,
    opts: StoreOptions,
) {
    let current = |shared: &Shared| -> (u64, sled::Db) {
        let epochs = shared.epochs.lock().expect("epochs");
        let e = epochs.last().expect("an open epoch");
        (e.n, e.db.clone())
    };
    // Callers waiting for their last event to be written and flushed.
    let mut parked: Vec<(u64, Done)> = Vec::new();
    // Callers waiting for a sequence number to be durable (answers that
    // report state), with when they asked.
    let mut barriers: Vec<(u64, Instant, Done)> = Vec::new();
    let mut parked_since: Option<Instant> = None;
    loop {
        let first = match rx.recv_timeout(opts.wait_timeout / 4) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch: Vec<Request> = first.into_iter().collect();
        while batch.len() < opts.max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (mut epoch, mut log) = current(&shared);
        let mut wrote = false;
        let mut wrote_accounts = false;
        let mut accounts_done: Vec<AccountDone> = Vec::new();
        let mut rotated: Vec<(u64, Done)> = Vec::new();
        let mut failures: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        let mut error: Option<StoreError> = None;
        let mut written: Vec<Event> = Vec::new();
        let mut wrote_archive = false;
        // The engine's events, in seq order, that arrived before these
        // requests (a caller asks for durability after its events are here).
        let events = std::mem::take(&mut *shared.pending.lock().expect("pending"));
        for e in events {
            if e.seq < next_event {
                continue; // recovered already
            }
            if e.seq > next_event {
                // The engine pushes under the lock that assigns seq, so this
                // is a bug: never write a gap.
                tracing::error!(
                    seq = e.seq,
                    expected = next_event,
                    "event out of order; not logged"
                );
                error = Some(StoreError::Gap(next_event));
                break;
            }
            if let engine::EventKind::JobArchived { job } = &e.kind {
                if let Err(err) = shared.archive.put(job) {
                    error = Some(err);
                    break;
                }
                wrote_archive = true;
            }
            if write_event(&shared, &log, e, &mut next_log, &mut written) {
                next_event += 1;
                wrote = true;
            } else {
                error = Some(StoreError::Io("log write failed".into()));
                break;
            }
        }
        for req in batch {
            match req {
                Request::Events(events, done) => {
                    let max = events.iter().map(|e| e.seq).max().unwrap_or(0);
                    parked.push((max, done));
                }
                Request::Barrier(seq, done) => barriers.push((seq, Instant::now(), done)),
                Request::Account(a, done) => match write_account(&shared, &log, &a, next_log) {
                    Ok(()) => {
                        next_log += 1;
                        wrote = true;
                        wrote_accounts = true;
                        accounts_done.push(done);
                    }
                    Err(e) => failures.push(Box::new(move || done(Err(e)))),
                },
                Request::Rotate(done) => {
                    // Everything before this request is in the old epoch.
                    let r = log
                        .flush()
                        .map_err(io)
                        .and_then(|_| new_epoch(&shared.log_dir, epoch + 1));
                    match r {
                        Ok(e) => {
                            epoch = e.n;
                            log = e.db.clone();
                            shared.epochs.lock().expect("epochs").push(e);
                            next_log = 1;
                            rotated.push((epoch, done));
                        }
                        Err(e) => failures.push(Box::new(move || done(Err(e)))),
                    }
                }
            }
        }
        // The archive first: a durable `JobArchived` always has its job there.
        if wrote_archive && error.is_none() {
            if let Err(e) = shared.archive.flush() {
                error = Some(e);
            }
        }
        if wrote && error.is_none() {
            shared.flushes.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = log.flush() {
                error = Some(io(e));
            }
        }
        if wrote_accounts && error.is_none() {
            if let Err(e) = shared.accounts_db.flush() {
                error = Some(io(e));
            }
        }
        for f in failures {
            f();
        }
        for (n, done) in rotated {
            done(Ok(n));
        }
        match error {
            None => {
                for done in accounts_done {
                    done(Ok(()));
                }
                let durable = next_event - 1;
                shared.durable.fetch_max(durable, Ordering::AcqRel);
                if !written.is_empty() {
                    if let Some(sink) = shared.on_durable.lock().expect("on_durable").as_mut() {
                        sink(std::mem::take(&mut written));
                    }
                }
                let (ready, waiting): (Vec<_>, Vec<_>) =
                    parked.drain(..).partition(|(max, _)| *max <= durable);
                parked = waiting;
                for (max, done) in ready {
                    done(Ok(max));
                }
                // A barrier past anything that arrives in time fails rather
                // than hangs (its events were never handed to the log).
                let (ready, waiting): (Vec<_>, Vec<_>) = barriers
                    .drain(..)
                    .partition(|(seq, at, _)| *seq <= durable || at.elapsed() >= opts.wait_timeout);
                barriers = waiting;
                for (seq, _, done) in ready {
                    if seq <= durable {
                        done(Ok(seq));
                    } else {
                        done(Err(StoreError::Gap(durable + 1)));
                    }
                }
            }
            Some(e) => {
                tracing::error!(%e, "log flush failed");
                for done in accounts_done {
                    done(Err(e.clone()));
                }
                for (_, done) in parked.drain(..) {
                    done(Err(e.clone()));
                }
                for (_, _, done) in barriers.drain(..) {
                    done(Err(e.clone()));
                }
            }
        }
        // Waiters for events that never come (a bug) fail rather than hang.
        if !parked.is_empty() {
            let durable = next_event - 1;
            parked_since = match parked_since {
                None => Some(Instant::now()),
                Some(t) if t.elapsed() >= opts.wait_timeout => {
                    tracing::error!(durable, "waiters past the log's end; failing them");
                    for (_, done) in parked.drain(..) {
                        done(Err(StoreError::Gap(durable + 1)));
                    }
                    None
                }
                s => s,
            };
        } else {
            parked_since = None;
        }
    }
    // Whatever the engine emitted last (nobody waits for it any more, but a
    // clean stop keeps it).
    let log = current(&shared).1;
    let mut written = Vec::new();
    for e in std::mem::take(&mut *shared.pending.lock().expect("pending")) {
        if e.seq != next_event {
            continue;
        }
        if let engine::EventKind::JobArchived { job } = &e.kind {
            let _ = shared.archive.put(job);
        }
        if write_event(&shared, &log, e, &mut next_log, &mut written) {
            next_event += 1;
        }
    }
    let _ = shared.archive.flush();
    let _ = log.flush();
    let _ = shared.accounts_db.flush();
    for (_, done) in parked {
        done(Err(StoreError::Closed));
    }
    for (_, _, done) in barriers {
        done(Err(StoreError::Closed));
    }
}

/// Writes one event at the log's next key; true if written.
fn write_event(
    shared: &Shared,
    log: &sled::Db,
    e: Event,
    next_log: &mut u64,
    written: &mut Vec<Event>,
) -> bool {
    let entry = Entry::Event(e);
    let bytes = codec::encode(&entry);
    if let Err(err) = log.insert(key(*next_log), bytes) {
        tracing::error!(%err, "log write failed");
        return false;
    }
    let Entry::Event(e) = entry else {
        unreachable!("built as an event above")
    };
    written.push(e);
    *next_log += 1;
    shared.since_snapshot.fetch_add(1, Ordering::AcqRel);
    true
}

fn write_account(
    shared: &Shared,
    log: &sled::Db,
    a: &Account,
    log_seq: u64,
) -> Result<(), StoreError> {
    if shared.emails.contains_key(a.email.as_bytes()).map_err(io)? {
        return Err(StoreError::EmailTaken);
    }
    if shared.accounts.contains_key(a.id.as_bytes()).map_err(io)? {
        return Err(StoreError::Conflict);
    }
    shared
        .accounts
        .insert(a.id.as_bytes(), codec::encode(a))
        .map_err(io)?;
    shared
        .emails
        .insert(a.email.as_bytes(), a.id.as_bytes())
        .map_err(io)?;
    log.insert(key(log_seq), codec::encode(&Entry::Account(a.clone())))
        .map_err(io)?;
    Ok(())
}
