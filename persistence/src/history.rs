//! History records beside the archived jobs, in the same redb file:
//! maintenance logs, stock movements, attachments and the jobs and logs
//! that list them. They grow with time, so they
//! live here and not in the engine: the log writer puts each from its
//! event (committed with the archive before the log flush), and the
//! queries read them back newest first by time or by an index key
//! (a schedule, a property, a part, a location). Each record also
//! remembers the seq of the event that wrote it, so the records of events
//! lost with the log's tail are removed at open.

use engine::attachment::{Attachment, AttachmentRef};
use engine::payment::PaymentRef;
use engine::stock::Movement;
use engine::{Log, LogQuery, Millis};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::archive::io;
use crate::codec;
use crate::StoreError;

/// Most index entries one read looks at per key.
const SCAN_LIMIT: usize = 20_000;

/// The four tables of one kind of record.
pub struct Tables {
    /// id → record.
    items: TableDefinition<'static, &'static str, &'static [u8]>,
    /// (at, id).
    by_time: TableDefinition<'static, (i64, &'static str), ()>,
    /// (key, at, id).
    by_key: TableDefinition<'static, (&'static str, i64, &'static str), ()>,
    /// seq of the writing event → `at \n id \n key…` (what to remove).
    by_seq: TableDefinition<'static, u64, &'static str>,
}

const LOGS: Tables = Tables {
    items: TableDefinition::new("mlogs"),
    by_time: TableDefinition::new("mlogs_by_time"),
    by_key: TableDefinition::new("mlogs_by_key"),
    by_seq: TableDefinition::new("mlogs_by_seq"),
};

const MOVES: Tables = Tables {
    items: TableDefinition::new("moves"),
    by_time: TableDefinition::new("moves_by_time"),
    by_key: TableDefinition::new("moves_by_key"),
    by_seq: TableDefinition::new("moves_by_seq"),
};

const ATTACHMENTS: Tables = Tables {
    items: TableDefinition::new("atts"),
    by_time: TableDefinition::new("atts_by_time"),
    by_key: TableDefinition::new("atts_by_key"),
    by_seq: TableDefinition::new("atts_by_seq"),
};

const ATTACHMENT_REFS: Tables = Tables {
    items: TableDefinition::new("att_refs"),
    by_time: TableDefinition::new("att_refs_by_time"),
    by_key: TableDefinition::new("att_refs_by_key"),
    by_seq: TableDefinition::new("att_refs_by_seq"),
};

const PAYMENT_REFS: Tables = Tables {
    items: TableDefinition::new("pay_refs"),
    by_time: TableDefinition::new("pay_refs_by_time"),
    by_key: TableDefinition::new("pay_refs_by_key"),
    by_seq: TableDefinition::new("pay_refs_by_seq"),
};

const ALL: [&Tables; 5] = [&LOGS, &MOVES, &ATTACHMENTS, &ATTACHMENT_REFS, &PAYMENT_REFS];

/// A kind of history record.
pub trait Record: Serialize + DeserializeOwned {
    /// A short name of the kind (a cluster's Redis keys use it).
    const NAME: &'static str;
    fn tables() -> &'static Tables;
    fn id(&self) -> &str;
    fn at(&self) -> Millis;
    /// The index keys it is found under.
    fn keys(&self) -> Vec<String>;
}

impl Record for Log {
    const NAME: &'static str = "mlog";
    fn tables() -> &'static Tables {
        &LOGS
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn at(&self) -> Millis {
        self.performed_at
    }
    fn keys(&self) -> Vec<String> {
        vec![
            format!("s:{}", self.schedule_id),
            format!("p:{}", self.property_id),
        ]
    }
}

impl Record for Movement {
    const NAME: &'static str = "mv";
    fn tables() -> &'static Tables {
        &MOVES
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn at(&self) -> Millis {
        self.at
    }
    fn keys(&self) -> Vec<String> {
        let mut k = vec![format!("p:{}", self.part_id)];
        for l in self.from.iter().chain(self.to.iter()) {
            k.push(format!("l:{l}"));
        }
        k
    }
}

impl Record for Attachment {
    const NAME: &'static str = "att";
    fn tables() -> &'static Tables {
        &ATTACHMENTS
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn at(&self) -> Millis {
        self.created_at
    }
    /// `o:<owner>`, and `d:<owner>:<sha256>` (has this owner stored
    /// these bytes before: the quota counts them once).
    fn keys(&self) -> Vec<String> {
        vec![
            format!("o:{}", self.owner_id),
            owner_digest_key(&self.owner_id, &self.sha256),
        ]
    }
}

impl Record for AttachmentRef {
    const NAME: &'static str = "attref";
    fn tables() -> &'static Tables {
        &ATTACHMENT_REFS
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn at(&self) -> Millis {
        self.at
    }
    /// `a:<attachment id>`: who lists an attachment.
    fn keys(&self) -> Vec<String> {
        vec![format!("a:{}", self.attachment_id)]
    }
}

impl Record for PaymentRef {
    const NAME: &'static str = "payref";
    fn tables() -> &'static Tables {
        &PAYMENT_REFS
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn at(&self) -> Millis {
        self.at
    }
    /// `j:<job id>`: the refs of a job.
    fn keys(&self) -> Vec<String> {
        vec![format!("j:{}", self.job_id)]
    }
}

/// The index key of an owner's uploads of one file.
pub fn owner_digest_key(owner: &str, sha256: &str) -> String {
    format!("d:{owner}:{sha256}")
}

/// A history record an event writes.
pub enum Written<'a> {
    /// Which job a payment's `provider_ref` belongs to.
    PaymentRef(PaymentRef),
    Log(&'a Log),
    Movement(&'a Movement),
    Attachment(&'a Attachment),
    /// A job or log listing an attachment.
    Ref(AttachmentRef),
}

/// The history records an event writes — the one list both backends
/// store from (most events write none, without allocating).
pub fn written(kind: &engine::EventKind, at: Millis) -> Vec<Written<'_>> {
    use engine::EventKind as K;
    let refs = || {
        AttachmentRef::from_event(kind, at)
            .into_iter()
            .map(Written::Ref)
    };
    match kind {
        K::MaintenanceLogged { log, .. } => {
            std::iter::once(Written::Log(log)).chain(refs()).collect()
        }
        K::JobCreated { attachments, .. } if !attachments.is_empty() => refs().collect(),
        K::StockMoved { movement } => vec![Written::Movement(movement)],
        K::AttachmentStored { attachment } => vec![Written::Attachment(attachment)],
        K::PaymentRecorded { .. } => PaymentRef::from_event(kind, at)
            .map(Written::PaymentRef)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// The index keys a log query reads.
pub fn log_keys(q: &LogQuery) -> Option<Vec<String>> {
    match (&q.schedules, &q.properties) {
        (Some(s), _) => Some(s.iter().map(|s| format!("s:{s}")).collect()),
        (None, Some(p)) => Some(p.iter().map(|p| format!("p:{p}")).collect()),
        (None, None) => None,
    }
}

/// A record waiting for the archive's next commit.
pub struct Pending {
    tables: &'static Tables,
    seq: u64,
    id: String,
    at: i64,
    keys: Vec<String>,
    bytes: Vec<u8>,
}

impl Pending {
    pub fn of<R: Record>(seq: u64, r: &R) -> Pending {
        Pending {
            tables: R::tables(),
            seq,
            id: r.id().to_owned(),
            at: r.at().0,
            keys: r.keys(),
            bytes: codec::encode(r),
        }
    }
}

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    for t in ALL {
        tx.open_table(t.items).map_err(io)?;
        tx.open_table(t.by_time).map_err(io)?;
        tx.open_table(t.by_key).map_err(io)?;
        tx.open_table(t.by_seq).map_err(io)?;
    }
    Ok(())
}

pub(crate) fn write(tx: &WriteTransaction, records: &[Pending]) -> Result<(), StoreError> {
    for r in records {
        let t = r.tables;
        tx.open_table(t.items)
            .map_err(io)?
            .insert(r.id.as_str(), r.bytes.as_slice())
            .map_err(io)?;
        tx.open_table(t.by_time)
            .map_err(io)?
            .insert((r.at, r.id.as_str()), ())
            .map_err(io)?;
        let mut by_key = tx.open_table(t.by_key).map_err(io)?;
        for k in &r.keys {
            by_key
                .insert((k.as_str(), r.at, r.id.as_str()), ())
                .map_err(io)?;
        }
        let mut entry = format!("{}\n{}", r.at, r.id);
        for k in &r.keys {
            entry.push('\n');
            entry.push_str(k);
        }
        tx.open_table(t.by_seq)
            .map_err(io)?
            .insert(r.seq, entry.as_str())
            .map_err(io)?;
    }
    Ok(())
}

/// Removes every record written by an event after `seq`.
pub(crate) fn drop_after(tx: &WriteTransaction, seq: u64) -> Result<usize, StoreError> {
    let mut n = 0;
    for t in ALL {
        let mut by_seq = tx.open_table(t.by_seq).map_err(io)?;
        let lost: Vec<(u64, String)> = by_seq
            .range(seq.saturating_add(1)..)
            .map_err(io)?
            .map(|e| e.map(|(k, v)| (k.value(), v.value().to_owned())))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        let mut items = tx.open_table(t.items).map_err(io)?;
        let mut by_time = tx.open_table(t.by_time).map_err(io)?;
        let mut by_key = tx.open_table(t.by_key).map_err(io)?;
        for (s, entry) in lost {
            by_seq.remove(s).map_err(io)?;
            let mut parts = entry.split('\n');
            let (Some(at), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let at: i64 = at.parse().unwrap_or_default();
            for k in parts {
                by_key.remove((k, at, id)).map_err(io)?;
            }
            by_time.remove((at, id)).map_err(io)?;
            if items.remove(id).map_err(io)?.is_some() {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The record of kind `R` with this id.
pub(crate) fn get<R: Record>(tx: &ReadTransaction, id: &str) -> Result<Option<R>, StoreError> {
    let items = tx.open_table(R::tables().items).map_err(io)?;
    let Some(bytes) = items.get(id).map_err(io)? else {
        return Ok(None);
    };
    codec::decode(bytes.value())
        .map(Some)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Records under any of `keys` (every one when `None`), at `[from, to]`,
/// kept by `keep`, newest first (time, then id), at most `limit`.
pub(crate) fn read<R: Record>(
    tx: &ReadTransaction,
    keys: Option<&[String]>,
    from: Option<Millis>,
    to: Option<Millis>,
    limit: usize,
    keep: impl Fn(&R) -> bool,
) -> Result<Vec<R>, StoreError> {
    let t = R::tables();
    let items = tx.open_table(t.items).map_err(io)?;
    let lo = from.map_or(i64::MIN, |m| m.0);
    let hi = to.map_or(i64::MAX, |m| m.0).saturating_add(1);
    let mut out: Vec<R> = Vec::new();
    let take = |ids: &mut dyn Iterator<Item = Result<String, StoreError>>,
                out: &mut Vec<R>|
     -> Result<(), StoreError> {
        let mut found = 0;
        for id in ids.take(SCAN_LIMIT) {
            let id = id?;
            let Some(bytes) = items.get(id.as_str()).map_err(io)? else {
                continue;
            };
            let r: R =
                codec::decode(bytes.value()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if keep(&r) {
                out.push(r);
                found += 1;
                if found >= limit {
                    break;
                }
            }
        }
        Ok(())
    };
    match keys {
        Some(keys) => {
            let by_key = tx.open_table(t.by_key).map_err(io)?;
            for k in keys {
                let mut ids = by_key
                    .range((k.as_str(), lo, "")..(k.as_str(), hi, ""))
                    .map_err(io)?
                    .rev()
                    .map(|e| e.map(|(k, _)| k.value().2.to_owned()).map_err(io));
                take(&mut ids, &mut out)?;
            }
        }
        None => {
            let by_time = tx.open_table(t.by_time).map_err(io)?;
            let mut ids = by_time
                .range((lo, "")..(hi, ""))
                .map_err(io)?
                .rev()
                .map(|e| e.map(|(k, _)| k.value().1.to_owned()).map_err(io));
            take(&mut ids, &mut out)?;
        }
    }
    out.sort_by(|a, b| (b.at(), b.id()).cmp(&(a.at(), a.id())));
    out.dedup_by(|a, b| a.id() == b.id());
    out.truncate(limit);
    Ok(out)
}
