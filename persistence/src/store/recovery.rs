//! Recovery: the newest good snapshot, then every log epoch read and
//! decoded on a second thread and replayed in chunks; the log cut at the
//! first entry that does not read back or does not follow.

use super::*;

const REPLAY_CHUNK: usize = 8192;

/// One log entry as the recovery reader saw it.
enum Scanned {
    Event(sled::IVec, u64, Box<Event>),
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
                (Some(s), Ok(Entry::Event(e))) => Scanned::Event(k, s, Box::new(e)),
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
pub(crate) fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    open_db_with(path, LOG_CACHE_BYTES)
}

/// sled's page cache for the log, snapshots and accounts. The log is
/// written once and read at start, accounts are point lookups: a small
/// cache does, and the server's memory then follows live work from the
/// first job (256 MiB let RSS climb ~56 MiB over the first 6 000 finished
/// jobs before it flattened — BENCHMARKS.md, "The log's cache").
pub(crate) const LOG_CACHE_BYTES: u64 = 8 << 20;

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
pub(super) fn recover(
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
        // Notifications replayed: their outbox entries are written again
        // (kept if there; the log was durable, the outbox may not be).
        let applied = engine.last_seq();
        for (_, _, e) in chunk.iter().filter(|(_, _, e)| e.seq <= applied) {
            if let engine::EventKind::NotificationQueued { notice } = &e.kind {
                shared
                    .outbox
                    .put_new(engine::notify::outbox::DeliveryRecord::from_notice(
                        notice, e.at,
                    ));
            }
        }
        if let Err(e) = shared.outbox.flush() {
            tracing::warn!(error = %e, "outbox entries of replayed notifications not written");
        }
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
                            chunk.push((i, k, *e));
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
