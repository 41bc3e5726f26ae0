//! The embedded outbox: one entry per delivery of a notification, in a redb
//! file (`outbox.redb`) beside the log. New entries are written by the log
//! writer when it logs the `NotificationQueued` event that raised them,
//! committed before the log is flushed but without an fsync of their own:
//! the log is what makes a notification durable. Recovery writes the
//! entries of every replayed notification again (an entry already there is
//! kept), and [`Outbox::sync`] runs before a snapshot lets the log forget
//! their events. An entry whose event never became durable (the outbox
//! reached the disk, the log's tail did not) is removed at open by
//! [`Outbox::drop_after`].
//!
//! The dispatcher (in the gateway) takes due entries with a claim (not due
//! again before it lapses; durable, and released at the next open, so a
//! crash mid-send sends them again at once: at least once), records each
//! attempt (not fsynced: a lost outcome means a resend), and prunes ended
//! entries after the retention. Memory does not grow with the backlog: an
//! endpoint down for a day only grows the file.

use std::path::Path;
use std::sync::Mutex;

use engine::notify::outbox::{DeliveryRecord, DeliveryStatus};
use engine::Millis;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::archive::{io, open_file};
use crate::codec;
use crate::StoreError;

/// id → record.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// (due at, id) → (), pending entries only.
const DUE: TableDefinition<(i64, &str), ()> = TableDefinition::new("due");
/// (status, event time, id) → (): listings, newest first.
const BY_STATUS: TableDefinition<(u8, i64, &str), ()> = TableDefinition::new("by_status");
/// (ended at, id) → (): delivered and failed entries, for pruning.
const ENDED: TableDefinition<(i64, &str), ()> = TableDefinition::new("ended");
/// (event seq, id) → (): what a lost tail removes.
const BY_SEQ: TableDefinition<(u64, &str), ()> = TableDefinition::new("by_seq");
/// id → (): entries taken by a dispatcher (released at open: the process
/// that took them is gone).
const CLAIMED: TableDefinition<&str, ()> = TableDefinition::new("claimed");

/// Most entries one listing looks at (a filter skips some).
const SCAN_LIMIT: usize = 20_000;

pub struct Outbox {
    db: Database,
    /// New entries since the last commit (written by [`Outbox::flush`]).
    pending: Mutex<Vec<DeliveryRecord>>,
}

/// The event seq in a delivery id (`ntf_<seq>.<n>`).
pub fn seq_of(id: &str) -> u64 {
    id.strip_prefix("ntf_")
        .and_then(|r| r.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn decode(b: &[u8]) -> Result<DeliveryRecord, StoreError> {
    codec::decode(b).map_err(|e| StoreError::Corrupt(format!("outbox: {e}")))
}

/// Writes `r`, moving its index entries from `old` (if it was there).
fn write(
    tx: &WriteTransaction,
    r: &DeliveryRecord,
    old: Option<&DeliveryRecord>,
) -> Result<(), StoreError> {
    let mut records = tx.open_table(RECORDS).map_err(io)?;
    let mut due = tx.open_table(DUE).map_err(io)?;
    let mut by_status = tx.open_table(BY_STATUS).map_err(io)?;
    let mut ended = tx.open_table(ENDED).map_err(io)?;
    let mut by_seq = tx.open_table(BY_SEQ).map_err(io)?;
    let mut claimed = tx.open_table(CLAIMED).map_err(io)?;
    let id = r.id.as_str();
    if let Some(o) = old {
        due.remove((o.due_at().0, id)).map_err(io)?;
        ended.remove((o.next_at.0, id)).map_err(io)?;
        by_status
            .remove((o.status.code(), o.at.0, id))
            .map_err(io)?;
    }
    records
        .insert(id, codec::encode(r).as_slice())
        .map_err(io)?;
    by_status
        .insert((r.status.code(), r.at.0, id), ())
        .map_err(io)?;
    by_seq.insert((seq_of(id), id), ()).map_err(io)?;
    if r.claimed_until.is_some() {
        claimed.insert(id, ()).map_err(io)?;
    } else {
        claimed.remove(id).map_err(io)?;
    }
    if r.status == DeliveryStatus::Pending {
        due.insert((r.due_at().0, id), ()).map_err(io)?;
    } else {
        ended.insert((r.next_at.0, id), ()).map_err(io)?;
    }
    Ok(())
}

fn remove(tx: &WriteTransaction, r: &DeliveryRecord) -> Result<(), StoreError> {
    let id = r.id.as_str();
    tx.open_table(RECORDS).map_err(io)?.remove(id).map_err(io)?;
    tx.open_table(DUE)
        .map_err(io)?
        .remove((r.next_at.0, id))
        .map_err(io)?;
    tx.open_table(ENDED)
        .map_err(io)?
        .remove((r.next_at.0, id))
        .map_err(io)?;
    tx.open_table(BY_STATUS)
        .map_err(io)?
        .remove((r.status.code(), r.at.0, id))
        .map_err(io)?;
    tx.open_table(BY_SEQ)
        .map_err(io)?
        .remove((seq_of(id), id))
        .map_err(io)?;
    Ok(())
}

fn remove_all(tx: &WriteTransaction, ids: &[String]) -> Result<(), StoreError> {
    for id in ids {
        if let Some(r) = get_in(tx, id)? {
            remove(tx, &r)?;
        }
    }
    Ok(())
}

fn get_in(tx: &WriteTransaction, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
    let t = tx.open_table(RECORDS).map_err(io)?;
    let v = t.get(id).map_err(io)?;
    v.map(|b| decode(b.value())).transpose()
}

impl Outbox {
    pub fn open(file: &Path) -> Result<Outbox, StoreError> {
        let db = open_file(file)?;
        let tx = db.begin_write().map_err(io)?;
        tx.open_table(RECORDS).map_err(io)?;
        tx.open_table(DUE).map_err(io)?;
        tx.open_table(BY_STATUS).map_err(io)?;
        tx.open_table(ENDED).map_err(io)?;
        tx.open_table(BY_SEQ).map_err(io)?;
        tx.open_table(CLAIMED).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(Outbox {
            db,
            pending: Mutex::new(Vec::new()),
        })
    }

    fn begin(&self, durable: bool) -> Result<WriteTransaction, StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        let d = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        tx.set_durability(d).map_err(io)?;
        tx.set_quick_repair(durable);
        Ok(tx)
    }

    /// Queues new entries (a logged notification's). Not durable, nor
    /// visible, until [`Outbox::flush`]; an entry already there is kept.
    pub fn put_new(&self, records: Vec<DeliveryRecord>) {
        self.pending.lock().expect("outbox pending").extend(records);
    }

    /// Commits the new entries, visible at once but without an fsync of
    /// their own: the log flush that follows makes their events durable,
    /// and recovery writes again the entries of every event it replays
    /// (`SledStore::open`), so a crash loses none. [`Outbox::sync`] makes
    /// them durable — before a snapshot lets the log forget their events.
    pub fn flush(&self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut *self.pending.lock().expect("outbox pending"));
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.begin(false)?;
        for r in &batch {
            if get_in(&tx, &r.id)?.is_none() {
                write(&tx, r, None)?;
            }
        }
        tx.commit().map_err(io)
    }

    /// Makes every commit so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.begin(true)?.commit().map_err(io)
    }

    /// Removes entries raised by events after `last_seq` (their events were
    /// lost with a crash: they never happened). Returns how many.
    pub fn drop_after(&self, last_seq: u64) -> Result<usize, StoreError> {
        let tx = self.begin(true)?;
        let ids: Vec<String> = {
            let t = tx.open_table(BY_SEQ).map_err(io)?;
            let r = t.range((last_seq + 1, "")..).map_err(io)?;
            r.map(|e| e.map(|(k, _)| k.value().1.to_owned()))
                .collect::<Result<_, _>>()
                .map_err(io)?
        };
        remove_all(&tx, &ids)?;
        tx.commit().map_err(io)?;
        Ok(ids.len())
    }

    /// Releases every claim (at open: whoever took them died with them), so
    /// those entries are due again at once instead of after the claim.
    pub fn release_claims(&self) -> Result<usize, StoreError> {
        let tx = self.begin(true)?;
        let ids: Vec<String> = {
            let t = tx.open_table(CLAIMED).map_err(io)?;
            let r = t.iter().map_err(io)?;
            r.map(|e| e.map(|(k, _)| k.value().to_owned()))
                .collect::<Result<_, _>>()
                .map_err(io)?
        };
        for id in &ids {
            if let Some(old) = get_in(&tx, id)? {
                let mut r = old.clone();
                r.claimed_until = None;
                write(&tx, &r, Some(&old))?;
            }
        }
        tx.commit().map_err(io)?;
        Ok(ids.len())
    }

    /// Takes up to `limit` entries due at `now`, moving their due time to
    /// `claim_until` (durably: a crash before their outcome is recorded
    /// sends them again after that).
    pub fn take_due(
        &self,
        now: Millis,
        claim_until: Millis,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let tx = self.begin(true)?;
        let ids: Vec<String> = {
            let t = tx.open_table(DUE).map_err(io)?;
            let r = t.range(..=(now.0, "\u{10ffff}")).map_err(io)?;
            r.take(limit)
                .map(|e| e.map(|(k, _)| k.value().1.to_owned()))
                .collect::<Result<_, _>>()
                .map_err(io)?
        };
        if ids.is_empty() {
            // Nothing due: no commit (and no fsync) on every idle poll.
            tx.abort().map_err(io)?;
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(old) = get_in(&tx, &id)? else {
                continue;
            };
            let mut r = old.clone();
            r.claimed_until = Some(claim_until);
            write(&tx, &r, Some(&old))?;
            out.push(r);
        }
        tx.commit().map_err(io)?;
        Ok(out)
    }

    /// Stores an entry as it now is (after an attempt, or a retry by ops).
    /// `durable`: acknowledged to someone (a retry); an attempt's outcome
    /// may be lost with a crash (the entry is then sent again).
    pub fn save(&self, r: &DeliveryRecord, durable: bool) -> Result<(), StoreError> {
        let tx = self.begin(durable)?;
        let old = get_in(&tx, &r.id)?;
        write(&tx, r, old.as_ref())?;
        tx.commit().map_err(io)
    }

    pub fn get(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let t = tx.open_table(RECORDS).map_err(io)?;
        let v = t.get(id).map_err(io)?;
        v.map(|b| decode(b.value())).transpose()
    }

    /// Entries with `status` (newest event first), or all of them, for
    /// `endpoint` if given, at most `limit`.
    pub fn list(
        &self,
        status: Option<DeliveryStatus>,
        endpoint: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let records = tx.open_table(RECORDS).map_err(io)?;
        let idx = tx.open_table(BY_STATUS).map_err(io)?;
        let mut out = Vec::new();
        let statuses: Vec<DeliveryStatus> = match status {
            Some(s) => vec![s],
            None => DeliveryStatus::ALL.to_vec(),
        };
        for s in statuses {
            let c = s.code();
            let range = idx
                .range((c, i64::MIN, "")..=(c, i64::MAX, "\u{10ffff}"))
                .map_err(io)?;
            for e in range.rev().take(SCAN_LIMIT) {
                let (k, _) = e.map_err(io)?;
                let id = k.value().2;
                let Some(b) = records.get(id).map_err(io)? else {
                    continue;
                };
                let r = decode(b.value())?;
                if endpoint.is_none_or(|ep| r.endpoint.as_deref() == Some(ep)) {
                    out.push(r);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }

    /// Removes delivered and failed entries that ended before `before`.
    pub fn prune(&self, before: Millis, limit: usize) -> Result<usize, StoreError> {
        let tx = self.begin(false)?;
        let ids: Vec<String> = {
            let t = tx.open_table(ENDED).map_err(io)?;
            let r = t.range(..(before.0, "")).map_err(io)?;
            r.take(limit)
                .map(|e| e.map(|(k, _)| k.value().1.to_owned()))
                .collect::<Result<_, _>>()
                .map_err(io)?
        };
        remove_all(&tx, &ids)?;
        tx.commit().map_err(io)?;
        Ok(ids.len())
    }

    /// Entries still to deliver (the backlog gauge).
    pub fn pending_len(&self) -> usize {
        let n = || -> Result<u64, StoreError> {
            let tx = self.db.begin_read().map_err(io)?;
            tx.open_table(DUE).map_err(io)?.len().map_err(io)
        };
        n().unwrap_or(0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_from_delivery_id() {
        assert_eq!(seq_of("ntf_42.3"), 42);
        assert_eq!(seq_of("nope"), 0);
    }
}
