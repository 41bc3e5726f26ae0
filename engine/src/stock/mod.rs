//! Parts and stock (API.md v1.1): a catalogue of parts, a movement ledger
//! per depot and van, reservations for jobs that need parts, and reorder
//! tasks.
//!
//! Stock is a ledger, never a mutable count: every change is an immutable
//! [`Movement`] (an event, [`crate::EventKind::StockMoved`]) and a balance
//! is what the movements add up to, plus the reservations of accepted jobs.
//! A movement that would take `available` below zero is refused before
//! anything changes. Movements are history: they leave the engine in their
//! event for the backend's store (the archive file, or Redis), like
//! maintenance logs; the engine keeps only the balances they add up to.
//!
//! Jobs can list parts: matching then admits only workers whose van has
//! every line available (a candidate filter of the exact nearest search),
//! acceptance reserves the lines in that van, completion consumes them
//! (`consume` movements with the job's id), cancel releases them — each in
//! the same lock and write as the job's own event.

mod commands;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::EventKind;
use crate::types::{JobId, Millis, WorkerId};

pub(crate) use commands::check_lines as check_lines_in;
pub use commands::{PartPatch, ReorderStep, StockCheck};

pub const MAX_SKU_BYTES: usize = 64;
pub const MAX_NAME_BYTES: usize = 200;
pub const MAX_FITS: usize = 50;
pub const MAX_PARTS: usize = 100_000;
/// Largest quantity in one movement or line.
pub const MAX_QTY: i64 = 1_000_000;
/// Most lines a job may list.
pub const MAX_LINES: usize = 20;

/// A part in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub fits: Vec<String>,
    pub unit_cost_cents: i64,
    pub supplier: String,
    pub reorder_point: i64,
    pub reorder_qty: i64,
    pub created_at: Millis,
}

impl Part {
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if self.id.is_empty() || self.id.len() > 64 {
            return bad("id", "must be 1 to 64 bytes");
        }
        if self.sku.trim().is_empty() || self.sku.len() > MAX_SKU_BYTES {
            return bad("sku", "must be 1 to 64 bytes");
        }
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return bad("name", "must be 1 to 200 bytes");
        }
        if self.fits.len() > MAX_FITS || self.fits.iter().any(|f| f.is_empty() || f.len() > 100) {
            return bad("fits", "at most 50 models of 1 to 100 bytes");
        }
        if self.supplier.len() > MAX_NAME_BYTES {
            return bad("supplier", "must be at most 200 bytes");
        }
        if !(0..=100_000_000).contains(&self.unit_cost_cents) {
            return bad("unit_cost_cents", "must be 0 to 100000000");
        }
        if !(0..=MAX_QTY).contains(&self.reorder_point) {
            return bad("reorder_point", "must be 0 to 1000000");
        }
        if !(1..=MAX_QTY).contains(&self.reorder_qty) {
            return bad("reorder_qty", "must be 1 to 1000000");
        }
        Ok(())
    }
}

/// `depot:<name>` or `van:<worker id>`.
pub fn check_location(field: &'static str, loc: &str) -> Result<(), EngineError> {
    let ok = match loc.split_once(':') {
        Some(("depot", name)) => !name.is_empty() && name.len() <= 64,
        Some(("van", w)) => !w.is_empty() && w.len() <= 128,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidInput {
            field,
            reason: "must be depot:<name> or van:<worker id>",
        })
    }
}

/// The van of `w`.
pub fn van(w: &WorkerId) -> String {
    format!("van:{}", w.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    Receive,
    Transfer,
    Consume,
    Return,
    Adjust,
}

impl MoveKind {
    pub fn parse(s: &str) -> Option<MoveKind> {
        Some(match s {
            "receive" => MoveKind::Receive,
            "transfer" => MoveKind::Transfer,
            "consume" => MoveKind::Consume,
            "return" => MoveKind::Return,
            "adjust" => MoveKind::Adjust,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Receive => "receive",
            MoveKind::Transfer => "transfer",
            MoveKind::Consume => "consume",
            MoveKind::Return => "return",
            MoveKind::Adjust => "adjust",
        }
    }
}

/// One change of stock. Never changed or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    pub id: String,
    pub part_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub qty: i64,
    pub kind: MoveKind,
    pub job_id: Option<JobId>,
    pub by: String,
    pub at: Millis,
    pub note: String,
    /// What `from` had available right after (for stockout analytics);
    /// set by the engine.
    #[serde(default)]
    pub from_available_after: Option<i64>,
}

impl Movement {
    /// The checks of its shape (the state's are in [`StockState::check`]).
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if self.id.is_empty() || self.id.len() > 200 {
            return bad("id", "must be 1 to 200 bytes");
        }
        if !(1..=MAX_QTY).contains(&self.qty) {
            return bad("qty", "must be an integer 1 to 1000000");
        }
        if self.note.len() > 1000 {
            return bad("note", "must be at most 1000 bytes");
        }
        if let Some(f) = &self.from {
            check_location("from", f)?;
        }
        if let Some(t) = &self.to {
            check_location("to", t)?;
        }
        let (from, to) = (self.from.is_some(), self.to.is_some());
        let shape = match self.kind {
            MoveKind::Receive => !from && to,
            MoveKind::Consume => from && !to,
            MoveKind::Transfer | MoveKind::Return => from && to,
            MoveKind::Adjust => from != to,
        };
        if !shape {
            return bad(
                "kind",
                "receive has only to, consume only from, transfer and return both, adjust one",
            );
        }
        if from && self.from == self.to {
            return bad("to", "must differ from from");
        }
        Ok(())
    }
}

/// A line of a job that needs parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartLine {
    pub part_id: String,
    pub qty: i64,
}

/// What a (part, location) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bal {
    pub on_hand: i64,
    pub reserved: i64,
}

impl Bal {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Ordered,
    Received,
    Cancelled,
}

impl TaskStatus {
    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "open" => TaskStatus::Open,
            "ordered" => TaskStatus::Ordered,
            "received" => TaskStatus::Received,
            "cancelled" => TaskStatus::Cancelled,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Ordered => "ordered",
            TaskStatus::Received => "received",
            TaskStatus::Cancelled => "cancelled",
        }
    }
    fn is_open(self) -> bool {
        matches!(self, TaskStatus::Open | TaskStatus::Ordered)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReorderTask {
    pub id: String,
    pub part_id: String,
    pub location: String,
    pub qty: i64,
    pub status: TaskStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Parts held for an accepted job, in its worker's van.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub location: String,
    pub lines: Vec<PartLine>,
}

/// The replicated part: catalogue, balances, rules, tasks, reservations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StockState {
    pub parts: BTreeMap<String, Part>,
    /// part → location → balance.
    pub balances: BTreeMap<String, BTreeMap<String, Bal>>,
    /// part → location → (reorder point, reorder qty), overriding the part's.
    pub rules: BTreeMap<String, BTreeMap<String, (i64, i64)>>,
    pub tasks: BTreeMap<String, ReorderTask>,
    pub reservations: BTreeMap<JobId, Reservation>,
    /// Tasks created so far (numbers the next).
    pub tasks_created: u64,
    /// When the periodic reorder check last ran.
    pub last_check: Option<Millis>,
    /// Lower-cased sku → part id.
    #[serde(skip)]
    skus: HashMap<String, String>,
    /// (part, location) → its open (or ordered) task.
    #[serde(skip)]
    open_tasks: HashMap<(String, String), String>,
    /// part → worker → its van's balance: what matching asks for every
    /// candidate, without building a location string.
    #[serde(skip)]
    vans: HashMap<String, HashMap<WorkerId, Bal>, ahash::RandomState>,
}

impl StockState {
    /// Rebuilds the indexes (after a snapshot is read).
    pub(crate) fn reindex(&mut self) {
        self.skus = self
            .parts
            .values()
            .map(|p| (p.sku.to_lowercase(), p.id.clone()))
            .collect();
        self.open_tasks = self
            .tasks
            .values()
            .filter(|t| t.status.is_open())
            .map(|t| ((t.part_id.clone(), t.location.clone()), t.id.clone()))
            .collect();
        self.vans.clear();
        let all: Vec<(String, String)> = self
            .balances
            .iter()
            .flat_map(|(p, m)| m.keys().map(move |l| (p.clone(), l.clone())))
            .collect();
        for (p, l) in all {
            self.sync_van(&p, &l);
        }
    }

    /// Copies a van's balance into the matching index.
    fn sync_van(&mut self, part: &str, loc: &str) {
        if let Some(w) = loc.strip_prefix("van:") {
            let b = self.bal(part, loc);
            self.vans
                .entry(part.to_owned())
                .or_default()
                .insert(WorkerId::from(w), b);
        }
    }

    pub fn bal(&self, part: &str, loc: &str) -> Bal {
        self.balances
            .get(part)
            .and_then(|m| m.get(loc))
            .copied()
            .unwrap_or_default()
    }

    fn bal_mut(&mut self, part: &str, loc: &str) -> &mut Bal {
        self.balances
            .entry(part.to_owned())
            .or_default()
            .entry(loc.to_owned())
            .or_default()
    }

    /// Whether `w`'s van has every line available.
    pub fn van_has(&self, w: &WorkerId, lines: &[PartLine]) -> bool {
        lines.iter().all(|l| {
            self.vans
                .get(&l.part_id)
                .and_then(|m| m.get(w))
                .is_some_and(|b| b.available() >= l.qty)
        })
    }

    /// The workers whose van has every line available, when the rarest
    /// line's part is in at most `max` vans (else `None`: too many to list,
    /// search the map instead).
    pub fn few_carriers(&self, lines: &[PartLine], max: usize) -> Option<Vec<WorkerId>> {
        let (rarest, vans) = lines
            .iter()
            .map(|l| (l, self.vans.get(&l.part_id)))
            .min_by_key(|(_, m)| m.map_or(0, |m| m.len()))?;
        let Some(vans) = vans else {
            return Some(Vec::new());
        };
        if vans.len() > max {
            return None;
        }
        Some(
            vans.iter()
                .filter(|(_, b)| b.available() >= rarest.qty)
                .map(|(w, _)| w.clone())
                .filter(|w| lines.len() == 1 || self.van_has(w, lines))
                .collect(),
        )
    }

    /// (part, location) pairs at or below their reorder point.
    pub fn low_count(&self) -> usize {
        self.balances
            .iter()
            .filter_map(|(p, locs)| self.parts.get(p).map(|p| (p, locs)))
            .map(|(p, locs)| {
                locs.iter()
                    .filter(|(l, b)| b.available() <= self.rule(p, l).0)
                    .count()
            })
            .sum()
    }

    /// Reorder tasks open or ordered.
    pub fn open_task_count(&self) -> usize {
        self.open_tasks.len()
    }

    /// The reorder point and quantity for (part, location).
    pub fn rule(&self, part: &Part, loc: &str) -> (i64, i64) {
        self.rules
            .get(&part.id)
            .and_then(|m| m.get(loc))
            .copied()
            .unwrap_or((part.reorder_point, part.reorder_qty))
    }

    pub fn part_by_sku(&self, sku: &str) -> Option<&Part> {
        self.skus
            .get(&sku.to_lowercase())
            .and_then(|id| self.parts.get(id))
    }

    /// The open task of (part, location), if any.
    pub fn open_task(&self, part: &str, loc: &str) -> Option<&ReorderTask> {
        self.open_tasks
            .get(&(part.to_owned(), loc.to_owned()))
            .and_then(|id| self.tasks.get(id))
    }

    fn part(&self, id: &str) -> Result<&Part, EngineError> {
        self.parts.get(id).ok_or(EngineError::InvalidInput {
            field: "part_id",
            reason: "no such part",
        })
    }

    /// Checks an event of this domain before it is applied.
    pub(crate) fn check(&self, kind: &EventKind) -> Result<(), EngineError> {
        match kind {
            EventKind::PartCreated { part } => {
                part.validate()?;
                if self.parts.contains_key(&part.id) {
                    return Err(EngineError::Conflict("a part with this id exists"));
                }
                if self.part_by_sku(&part.sku).is_some() {
                    return Err(EngineError::SkuTaken);
                }
                if self.parts.len() >= MAX_PARTS {
                    return Err(EngineError::Conflict("too many parts"));
                }
                Ok(())
            }
            EventKind::PartUpdated { part } => {
                part.validate()?;
                if !self.parts.contains_key(&part.id) {
                    return Err(EngineError::NotFound("part not found"));
                }
                if self.part_by_sku(&part.sku).is_some_and(|p| p.id != part.id) {
                    return Err(EngineError::SkuTaken);
                }
                Ok(())
            }
            EventKind::PartDeleted { id } => {
                if self.parts.contains_key(id) {
                    Ok(())
                } else {
                    Err(EngineError::NotFound("part not found"))
                }
            }
            EventKind::StockMoved { movement: m } => {
                m.validate()?;
                self.part(&m.part_id)?;
                if let Some(f) = &m.from {
                    if self.bal(&m.part_id, f).available() < m.qty {
                        return Err(EngineError::InsufficientStock);
                    }
                }
                if let Some(t) = &m.to {
                    if self.bal(&m.part_id, t).on_hand > i64::MAX / 4 - m.qty {
                        return Err(EngineError::InvalidInput {
                            field: "qty",
                            reason: "too large",
                        });
                    }
                }
                Ok(())
            }
            EventKind::StockRuleSet {
                part_id,
                location,
                reorder_point,
                reorder_qty,
            } => {
                self.part(part_id)?;
                check_location("location", location)?;
                if !(0..=MAX_QTY).contains(reorder_point) {
                    return Err(EngineError::InvalidInput {
                        field: "reorder_point",
                        reason: "must be 0 to 1000000",
                    });
                }
                if !(1..=MAX_QTY).contains(reorder_qty) {
                    return Err(EngineError::InvalidInput {
                        field: "reorder_qty",
                        reason: "must be 1 to 1000000",
                    });
                }
                Ok(())
            }
            EventKind::ReorderTaskCreated { task } => {
                if self.tasks.contains_key(&task.id) {
                    return Err(EngineError::Conflict("a task with this id exists"));
                }
                if self.open_task(&task.part_id, &task.location).is_some() {
                    return Err(EngineError::Conflict("an open task exists"));
                }
                Ok(())
            }
            EventKind::ReorderTaskUpdated { task } => {
                if self.tasks.contains_key(&task.id) {
                    Ok(())
                } else {
                    Err(EngineError::NotFound("task not found"))
                }
            }
            EventKind::PartsReserved {
                job_id,
                location,
                lines,
            } => {
                if self.reservations.contains_key(job_id) {
                    return Err(EngineError::Corrupt(format!(
                        "parts of {job_id} reserved twice"
                    )));
                }
                for l in lines {
                    if self.bal(&l.part_id, location).available() < l.qty {
                        return Err(EngineError::InsufficientStock);
                    }
                }
                Ok(())
            }
            EventKind::PartsReleased { job_id } => {
                if self.reservations.contains_key(job_id) {
                    Ok(())
                } else {
                    Err(EngineError::Corrupt(format!("no parts of {job_id} held")))
                }
            }
            _ => Ok(()),
        }
    }

    /// Applies an event of this domain (checked already).
    pub(crate) fn apply(&mut self, kind: &EventKind, at: Millis) {
        match kind {
            EventKind::PartCreated { part } => {
                self.skus.insert(part.sku.to_lowercase(), part.id.clone());
                self.parts.insert(part.id.clone(), part.clone());
            }
            EventKind::PartUpdated { part } => {
                if let Some(old) = self.parts.get(&part.id) {
                    self.skus.remove(&old.sku.to_lowercase());
                }
                self.skus.insert(part.sku.to_lowercase(), part.id.clone());
                self.parts.insert(part.id.clone(), part.clone());
            }
            EventKind::PartDeleted { id } => {
                if let Some(old) = self.parts.remove(id) {
                    self.skus.remove(&old.sku.to_lowercase());
                }
            }
            EventKind::StockMoved { movement: m } => {
                if let Some(f) = &m.from {
                    self.bal_mut(&m.part_id, f).on_hand -= m.qty;
                    self.sync_van(&m.part_id, f);
                }
                if let Some(t) = &m.to {
                    self.bal_mut(&m.part_id, t).on_hand += m.qty;
                    self.sync_van(&m.part_id, t);
                }
            }
            EventKind::StockRuleSet {
                part_id,
                location,
                reorder_point,
                reorder_qty,
            } => {
                self.rules
                    .entry(part_id.clone())
                    .or_default()
                    .insert(location.clone(), (*reorder_point, *reorder_qty));
            }
            EventKind::ReorderTaskCreated { task } => {
                self.tasks_created += 1;
                self.open_tasks.insert(
                    (task.part_id.clone(), task.location.clone()),
                    task.id.clone(),
                );
                self.tasks.insert(task.id.clone(), task.clone());
            }
            EventKind::ReorderTaskUpdated { task } => {
                let key = (task.part_id.clone(), task.location.clone());
                if task.status.is_open() {
                    self.open_tasks.insert(key, task.id.clone());
                } else if self.open_tasks.get(&key) == Some(&task.id) {
                    self.open_tasks.remove(&key);
                }
                self.tasks.insert(task.id.clone(), task.clone());
            }
            EventKind::PartsReserved {
                job_id,
                location,
                lines,
            } => {
                for l in lines {
                    self.bal_mut(&l.part_id, location).reserved += l.qty;
                    self.sync_van(&l.part_id, location);
                }
                self.reservations.insert(
                    job_id.clone(),
                    Reservation {
                        location: location.clone(),
                        lines: lines.clone(),
                    },
                );
            }
            EventKind::PartsReleased { job_id } => {
                if let Some(r) = self.reservations.remove(job_id) {
                    for l in &r.lines {
                        self.bal_mut(&l.part_id, &r.location).reserved -= l.qty;
                        self.sync_van(&l.part_id, &r.location);
                    }
                }
            }
            EventKind::StockChecked { .. } => self.last_check = Some(at),
            _ => {}
        }
    }
}
