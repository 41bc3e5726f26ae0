//! The log writer thread: group commit of engine events (taken from the
//! engine's pending list), accounts and epoch rotations; the archive
//! flushed before the log; waiters answered once their `seq` is durable;
//! durable events handed on in order.

use super::*;
use engine::notify::outbox::DeliveryRecord;

/// Where an event goes besides the log.
enum Staged {
    Nothing,
    Archive,
    Outbox,
}

/// Stages an event's side store: a finished job, a maintenance log, a
/// stock movement, an attachment or a job or log listing attachments for
/// the archive, a
/// notification's deliveries for the outbox (committed by the caller).
fn stage(shared: &Shared, e: &Event) -> Result<Staged, StoreError> {
    Ok(match &e.kind {
        engine::EventKind::JobArchived { job } => {
            shared.archive.put(job)?;
            Staged::Archive
        }
        engine::EventKind::NotificationQueued { notice } => {
            shared
                .outbox
                .put_new(DeliveryRecord::from_notice(notice, e.at));
            Staged::Outbox
        }
        kind => {
            let records = crate::history::written(kind, e.at);
            if records.is_empty() {
                return Ok(Staged::Nothing);
            }
            for w in &records {
                shared.archive.put_written(e.seq, w);
            }
            Staged::Archive
        }
    })
}

/// The engine's end of the log: pushes each event to the writer as the
/// engine emits it (under the engine's job lock, so in `seq` order).
///
/// Only a push onto a vector: no wake-up, no syscall under the engine's
/// lock. The writer takes the vector on every round, and every caller that
/// waits for durability sends its request after its events are in it.
/// (It holds only the list: an engine outliving its store keeps no
/// database open.)
pub(super) struct LogSink(pub(super) Arc<Mutex<Vec<Event>>>);

impl engine::EventSink for LogSink {
    fn push(&self, ev: &Event) {
        self.0.lock().expect("pending").push(ev.clone());
    }
}

pub(super) fn write_loop(
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
        let mut wrote_outbox = false;
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
            match stage(&shared, &e) {
                Ok(Staged::Archive) => wrote_archive = true,
                Ok(Staged::Outbox) => wrote_outbox = true,
                Ok(Staged::Nothing) => {}
                Err(err) => {
                    error = Some(err);
                    break;
                }
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
                Request::AccountUpdate(a, done) => match update_account(&shared, &a) {
                    Ok(()) => {
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
        // The archive first: a durable `JobArchived` always has its job
        // there. The outbox is committed without an fsync of its own (the
        // log makes a notification durable; recovery writes its entries
        // again), but before the log, so an entry is never behind its event.
        if wrote_archive && error.is_none() {
            if let Err(e) = shared.archive.flush() {
                error = Some(e);
            }
        }
        if wrote_outbox && error.is_none() {
            if let Err(e) = shared.outbox.flush() {
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
        let _ = stage(&shared, &e);
        if write_event(&shared, &log, e, &mut next_log, &mut written) {
            next_event += 1;
        }
    }
    let _ = shared.archive.flush();
    let _ = shared.outbox.flush();
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

fn update_account(shared: &Shared, a: &Account) -> Result<(), StoreError> {
    let same = match shared.accounts.get(a.id.as_bytes()).map_err(io)? {
        Some(v) => {
            let old: Account = codec::decode(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            old.email == a.email
        }
        None => false,
    };
    if !same {
        return Err(StoreError::Conflict);
    }
    shared
        .accounts
        .insert(a.id.as_bytes(), codec::encode(a))
        .map_err(io)?;
    Ok(())
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
