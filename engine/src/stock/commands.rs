//! Stock commands and queries. Each command locks the job table once,
//! checks, and emits its events; a movement that lowers a location's stock
//! checks its reorder rule in the same lock (a `ReorderTaskCreated`, and
//! its `reorder.created` notification, in the same write).

use serde::{Deserialize, Serialize};

use super::{
    van, Bal, MoveKind, Movement, Part, PartLine, ReorderTask, TaskStatus, MAX_LINES, MAX_QTY,
};
use crate::engine::{Engine, JobTable};
use crate::error::EngineError;
use crate::event::{Event, EventKind};
use crate::types::{JobId, Millis, WorkerId};

/// `PATCH /v1/parts/{id}`: the fields given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartPatch {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub fits: Option<Vec<String>>,
    pub unit_cost_cents: Option<i64>,
    pub supplier: Option<String>,
    pub reorder_point: Option<i64>,
    pub reorder_qty: Option<i64>,
}

/// A step of a reorder task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReorderStep {
    Ordered,
    Received,
    Cancel,
}

impl ReorderStep {
    pub fn parse(s: &str) -> Option<ReorderStep> {
        Some(match s {
            "ordered" => ReorderStep::Ordered,
            "received" => ReorderStep::Received,
            "cancel" => ReorderStep::Cancel,
            _ => return None,
        })
    }
}

/// What one reorder check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCheck {
    /// (part, location) pairs examined.
    pub checked: u64,
    /// Tasks created by this run.
    pub created: u64,
}

impl Engine {
    pub fn create_part(&self, part: Part, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        self.emit(&mut t, &mut out, now, EventKind::PartCreated { part })?;
        Ok(out)
    }

    /// Changes a part (its movements keep their `part_id`: no history lost).
    pub fn update_part(
        &self,
        id: &str,
        patch: PartPatch,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut p = t
            .stock
            .parts
            .get(id)
            .cloned()
            .ok_or(EngineError::NotFound("part not found"))?;
        if let Some(v) = patch.sku {
            p.sku = v;
        }
        if let Some(v) = patch.name {
            p.name = v;
        }
        if let Some(v) = patch.fits {
            p.fits = v;
        }
        if let Some(v) = patch.unit_cost_cents {
            p.unit_cost_cents = v;
        }
        if let Some(v) = patch.supplier {
            p.supplier = v;
        }
        if let Some(v) = patch.reorder_point {
            p.reorder_point = v;
        }
        if let Some(v) = patch.reorder_qty {
            p.reorder_qty = v;
        }
        let mut out = Vec::new();
        self.emit(&mut t, &mut out, now, EventKind::PartUpdated { part: p })?;
        Ok(out)
    }

    /// Takes a part out of the catalogue (its movements stay).
    pub fn delete_part(&self, id: &str, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        // A part still on hand somewhere stays (API.md v1.2): the ledger
        // would hold stock of nothing.
        if t.stock
            .balances
            .get(id)
            .is_some_and(|locs| locs.values().any(|b| b.on_hand != 0))
        {
            return Err(EngineError::Conflict(
                "this part has stock on hand; move it out first",
            ));
        }
        let mut out = Vec::new();
        let kind = EventKind::PartDeleted { id: id.to_owned() };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    /// Records a movement; one that lowers a location checks its reorder rule.
    pub fn move_stock(&self, m: Movement, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        self.move_in(&mut t, &mut out, m, now)?;
        Ok(out)
    }

    fn move_in(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        mut m: Movement,
        now: Millis,
    ) -> Result<(), EngineError> {
        m.from_available_after = m
            .from
            .as_ref()
            .map(|f| t.stock.bal(&m.part_id, f).available() - m.qty);
        let lowered = m.from.clone().map(|f| (m.part_id.clone(), f));
        let kind = EventKind::StockMoved {
            movement: Box::new(m),
        };
        self.emit(t, out, now, kind)?;
        if let Some((part, loc)) = lowered {
            self.reorder_if_low(t, out, &part, &loc, now);
        }
        Ok(())
    }

    /// Overrides the part's reorder point and quantity for one location.
    pub fn set_stock_rule(
        &self,
        part_id: &str,
        location: &str,
        reorder_point: i64,
        reorder_qty: i64,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let kind = EventKind::StockRuleSet {
            part_id: part_id.to_owned(),
            location: location.to_owned(),
            reorder_point,
            reorder_qty,
        };
        self.emit(&mut t, &mut out, now, kind)?;
        self.reorder_if_low(&mut t, &mut out, part_id, location, now);
        Ok(out)
    }

    /// A task for (part, location) if its available stock is at or below
    /// its reorder point and none is open.
    fn reorder_if_low(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        part: &str,
        loc: &str,
        now: Millis,
    ) -> bool {
        let Some(p) = t.stock.parts.get(part) else {
            return false;
        };
        let (rp, rq) = t.stock.rule(p, loc);
        let available = t.stock.bal(part, loc).available();
        if available > rp || t.stock.open_task(part, loc).is_some() {
            return false;
        }
        let task = ReorderTask {
            id: format!("rt_{}", t.stock.tasks_created + 1),
            part_id: part.to_owned(),
            location: loc.to_owned(),
            qty: rq.max(rp - available + 1),
            status: TaskStatus::Open,
            created_at: now,
            updated_at: now,
        };
        self.emit(t, out, now, EventKind::ReorderTaskCreated { task })
            .is_ok()
    }

    /// The reorder check over every stocked (part, location) and every rule.
    pub fn reorder_check(&self, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (part, locs) in &t.stock.balances {
            for loc in locs.keys() {
                pairs.push((part.clone(), loc.clone()));
            }
        }
        for (part, locs) in &t.stock.rules {
            for loc in locs.keys() {
                pairs.push((part.clone(), loc.clone()));
            }
        }
        pairs.sort();
        pairs.dedup();
        let mut out = Vec::new();
        let mut report = StockCheck::default();
        for (part, loc) in &pairs {
            report.checked += 1;
            if self.reorder_if_low(&mut t, &mut out, part, loc, now) {
                report.created += 1;
            }
        }
        self.emit(&mut t, &mut out, now, EventKind::StockChecked { report })?;
        Ok(out)
    }

    /// `POST /v1/ops/reorder/tasks/{id}/{step}`: `received` also receives
    /// the task's quantity into its location — or, with `from` (a depot
    /// filling a van), transfers it from there.
    pub fn reorder_step(
        &self,
        id: &str,
        step: ReorderStep,
        by: &str,
        from: Option<String>,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut task = t
            .stock
            .tasks
            .get(id)
            .cloned()
            .ok_or(EngineError::NotFound("task not found"))?;
        let to = match (step, task.status) {
            (ReorderStep::Ordered, TaskStatus::Open) => TaskStatus::Ordered,
            (ReorderStep::Received, TaskStatus::Open | TaskStatus::Ordered) => TaskStatus::Received,
            (ReorderStep::Cancel, TaskStatus::Open | TaskStatus::Ordered) => TaskStatus::Cancelled,
            _ => {
                return Err(EngineError::Conflict(
                    "the task is not in a state for that step",
                ))
            }
        };
        task.status = to;
        task.updated_at = now;
        let mut out = Vec::new();
        let receive = (to == TaskStatus::Received).then(|| Movement {
            id: format!("mv_{}", task.id),
            part_id: task.part_id.clone(),
            from: from.clone(),
            to: Some(task.location.clone()),
            qty: task.qty,
            kind: if from.is_some() {
                MoveKind::Transfer
            } else {
                MoveKind::Receive
            },
            job_id: None,
            by: by.to_owned(),
            at: now,
            note: format!("reorder task {}", task.id),
            from_available_after: None,
        });
        if let Some(m) = &receive {
            // The part may be gone from the catalogue, the depot short:
            // then nothing changes.
            t.stock.check(&EventKind::StockMoved {
                movement: Box::new(m.clone()),
            })?;
        }
        self.emit(
            &mut t,
            &mut out,
            now,
            EventKind::ReorderTaskUpdated { task },
        )?;
        if let Some(m) = receive {
            self.move_in(&mut t, &mut out, m, now)?;
        }
        Ok(out)
    }

    // ---- jobs that need parts ---------------------------------------------

    /// The lines of a new job: known parts, quantities in range, each part
    /// once (repeated lines are added up).
    pub fn check_lines(&self, lines: &[PartLine]) -> Result<Vec<PartLine>, EngineError> {
        let t = self.jobs.lock();
        check_lines(&t, lines)
    }

    /// After `JobAccepted`: hold the job's parts in the worker's van (the
    /// accept was refused before if they are not all available).
    pub(crate) fn reserve_parts(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        seq: u64,
        worker: &WorkerId,
        now: Millis,
    ) -> Result<(), EngineError> {
        let job = &t.jobs[&seq];
        if job.parts.is_empty() {
            return Ok(());
        }
        let kind = EventKind::PartsReserved {
            job_id: job.id.clone(),
            location: van(worker),
            lines: job.parts.clone(),
        };
        self.emit(t, out, now, kind)
    }

    /// After `JobCompleted`: the held parts are consumed (movements with
    /// the job's id).
    pub(crate) fn consume_parts(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        job: &JobId,
        worker: &WorkerId,
        now: Millis,
    ) -> Result<(), EngineError> {
        let Some(r) = t.stock.reservations.get(job).cloned() else {
            return Ok(());
        };
        let kind = EventKind::PartsReleased {
            job_id: job.clone(),
        };
        self.emit(t, out, now, kind)?;
        for (i, l) in r.lines.iter().enumerate() {
            let m = Movement {
                id: format!("mv_{}_{}", job.as_str(), i + 1),
                part_id: l.part_id.clone(),
                from: Some(r.location.clone()),
                to: None,
                qty: l.qty,
                kind: MoveKind::Consume,
                job_id: Some(job.clone()),
                by: worker.as_str().to_owned(),
                at: now,
                note: String::new(),
                from_available_after: None,
            };
            self.move_in(t, out, m, now)?;
        }
        Ok(())
    }

    /// A cancelled job's held parts go back to available.
    pub(crate) fn release_parts(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        job: &JobId,
        now: Millis,
    ) -> Result<(), EngineError> {
        if !t.stock.reservations.contains_key(job) {
            return Ok(());
        }
        let kind = EventKind::PartsReleased {
            job_id: job.clone(),
        };
        self.emit(t, out, now, kind)
    }

    // ---- queries -------------------------------------------------------------

    /// Whether a part has this sku (case-insensitive).
    pub fn sku_taken(&self, sku: &str) -> bool {
        self.jobs.lock().stock.part_by_sku(sku).is_some()
    }

    pub fn part(&self, id: &str) -> Option<Part> {
        self.jobs.lock().stock.parts.get(id).cloned()
    }

    /// Parts whose sku or name contains `q` (case-insensitive) and that fit
    /// `fits`, newest first, at most `limit`.
    pub fn parts(&self, q: Option<&str>, fits: Option<&str>, limit: usize) -> Vec<Part> {
        let t = self.jobs.lock();
        let q = q.map(str::to_lowercase);
        let mut v: Vec<&Part> = t
            .stock
            .parts
            .values()
            .filter(|p| {
                q.as_ref().is_none_or(|q| {
                    p.sku.to_lowercase().contains(q) || p.name.to_lowercase().contains(q)
                }) && fits.is_none_or(|f| p.fits.iter().any(|x| x == f))
            })
            .collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.into_iter().take(limit).cloned().collect()
    }

    /// Balances: `(part, location, balance)` where `keep` says, by part
    /// then location.
    pub fn balances(
        &self,
        keep: impl Fn(&Part, &str, &Bal, (i64, i64)) -> bool,
        limit: usize,
    ) -> Vec<(Part, String, Bal)> {
        let t = self.jobs.lock();
        let mut out = Vec::new();
        for (pid, locs) in &t.stock.balances {
            let Some(p) = t.stock.parts.get(pid) else {
                continue;
            };
            for (loc, b) in locs {
                if keep(p, loc, b, t.stock.rule(p, loc)) {
                    out.push((p.clone(), loc.clone(), *b));
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Every balance of a part, by location (analytics).
    pub fn part_balances(&self, part: &str) -> Vec<(String, Bal)> {
        let t = self.jobs.lock();
        t.stock
            .balances
            .get(part)
            .map(|m| m.iter().map(|(l, b)| (l.clone(), *b)).collect())
            .unwrap_or_default()
    }

    pub fn reorder_tasks(&self, status: Option<TaskStatus>, limit: usize) -> Vec<ReorderTask> {
        let t = self.jobs.lock();
        let mut v: Vec<&ReorderTask> = t
            .stock
            .tasks
            .values()
            .filter(|x| status.is_none_or(|s| x.status == s))
            .collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.into_iter().take(limit).cloned().collect()
    }

    pub fn reorder_task(&self, id: &str) -> Option<ReorderTask> {
        self.jobs.lock().stock.tasks.get(id).cloned()
    }

    /// When the periodic reorder check last ran.
    pub fn last_stock_check(&self) -> Option<Millis> {
        self.jobs.lock().stock.last_check
    }
}

pub(crate) fn check_lines(t: &JobTable, lines: &[PartLine]) -> Result<Vec<PartLine>, EngineError> {
    if lines.len() > MAX_LINES {
        return Err(EngineError::InvalidInput {
            field: "parts",
            reason: "at most 20 lines",
        });
    }
    let mut out: Vec<PartLine> = Vec::new();
    for l in lines {
        if !(1..=MAX_QTY).contains(&l.qty) {
            return Err(EngineError::InvalidInput {
                field: "parts.qty",
                reason: "must be an integer 1 to 1000000",
            });
        }
        if !t.stock.parts.contains_key(&l.part_id) {
            return Err(EngineError::InvalidInput {
                field: "parts.part_id",
                reason: "no such part",
            });
        }
        match out.iter_mut().find(|x| x.part_id == l.part_id) {
            Some(x) => x.qty = (x.qty + l.qty).min(MAX_QTY),
            None => out.push(l.clone()),
        }
    }
    out.sort_by(|a, b| a.part_id.cmp(&b.part_id));
    Ok(out)
}
