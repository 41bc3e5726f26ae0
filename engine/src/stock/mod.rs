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
mod types;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::EventKind;
use crate::types::{JobId, Millis, WorkerId};

pub(crate) use commands::check_lines as check_lines_in;
pub use commands::{PartPatch, ReorderStep, StockCheck};
pub use types::*;

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
