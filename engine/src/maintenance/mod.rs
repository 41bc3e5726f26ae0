//! Maintenance programmes (API.md v1.1): recurring schedules at a property
//! that dispatch themselves, completion logs that roll them, and the
//! due/overdue check.
//!
//! * [`recurrence`] — when a schedule's occurrences fall (calendar
//!   arithmetic in its zone with `jiff`).
//! * [`Schedule`] and [`MaintenanceState`] — pure state under the engine's
//!   job lock, changed only by this domain's events, carried in snapshots
//!   (the indexes rebuilt on restore).
//! * `commands` — create, change, delete, log, check, and the auto-dispatch
//!   that `tick` runs: a schedule whose `next_due_at − lead_s` has come and
//!   that has no open job creates one (a normal job at the property, with
//!   `schedule_id`), at most once per occurrence.
//!
//! Logs are history: they leave the engine inside their event
//! ([`crate::EventKind::MaintenanceLogged`]) for the backend's store (the
//! archive file, or Redis), never to be kept in memory here.

mod commands;
pub mod recurrence;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::EventKind;
use crate::property::PropertyState;
use crate::types::{JobId, Millis, Skill, WorkerId};

pub use commands::{CheckReport, SchedulePatch, ScheduleQuery, ScheduleViewer};
pub use recurrence::{Every, Rule, StepUnit};

pub const MAX_TITLE_BYTES: usize = 200;
pub const MAX_TEXT_BYTES: usize = 4096;
/// Most schedules kept (the seed's scale is 30 000).
pub const MAX_SCHEDULES: usize = 500_000;
/// Longest lead time: a year.
pub const MAX_LEAD_S: u64 = 366 * 86_400;

/// What the next due date is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The next occurrence of the calendar after the current due date.
    Due,
    /// One step after the work was done.
    Completion,
}

impl Anchor {
    pub fn parse(s: &str) -> Option<Anchor> {
        match s {
            "due" => Some(Anchor::Due),
            "completion" => Some(Anchor::Completion),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Anchor::Due => "due",
            Anchor::Completion => "completion",
        }
    }
}

/// A schedule's status at an instant (derived, never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Upcoming,
    Due,
    Overdue,
    Paused,
}

impl ScheduleStatus {
    pub fn parse(s: &str) -> Option<ScheduleStatus> {
        Some(match s {
            "upcoming" => ScheduleStatus::Upcoming,
            "due" => ScheduleStatus::Due,
            "overdue" => ScheduleStatus::Overdue,
            "paused" => ScheduleStatus::Paused,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Upcoming => "upcoming",
            ScheduleStatus::Due => "due",
            ScheduleStatus::Overdue => "overdue",
            ScheduleStatus::Paused => "paused",
        }
    }
}

/// What a log says was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuesFound {
    None,
    Minor,
    Major,
}

impl IssuesFound {
    pub fn parse(s: &str) -> Option<IssuesFound> {
        Some(match s {
            "none" => IssuesFound::None,
            "minor" => IssuesFound::Minor,
            "major" => IssuesFound::Major,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            IssuesFound::None => "none",
            IssuesFound::Minor => "minor",
            IssuesFound::Major => "major",
        }
    }
}

/// Which alert the check raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Due,
    Overdue,
}

impl AlertKind {
    /// Its notification event name.
    pub fn event_name(self) -> &'static str {
        match self {
            AlertKind::Due => "maintenance.due",
            AlertKind::Overdue => "maintenance.overdue",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Due => "due",
            AlertKind::Overdue => "overdue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub property_id: String,
    pub title: String,
    pub skill: Skill,
    pub description: String,
    pub every: Every,
    pub timezone: String,
    pub start_at: Millis,
    pub next_due_at: Millis,
    pub anchor: Anchor,
    pub lead_s: u64,
    pub assigned_to: Option<WorkerId>,
    pub paused: bool,
    pub open_job_id: Option<JobId>,
    pub missed: u32,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The due date a job was last created for: never a second one for it
    /// (also after that job is cancelled).
    #[serde(default)]
    pub dispatched_for: Option<Millis>,
    /// Jobs created so far (numbers the next job's id).
    #[serde(default)]
    pub jobs_created: u32,
    /// When it was last done (a log that rolled it).
    #[serde(default)]
    pub last_done_at: Option<Millis>,
    /// The due dates a `due` / `overdue` alert was raised for.
    #[serde(default)]
    pub alerted_due: Option<Millis>,
    #[serde(default)]
    pub alerted_overdue: Option<Millis>,
}

impl Schedule {
    /// Its calendar.
    pub fn rule(&self) -> Result<Rule, EngineError> {
        Rule::new(self.every, &self.timezone, self.start_at)
    }

    /// `paused`; `overdue` from `next_due_at`; `due` within `window_s`
    /// before it; else `upcoming`.
    pub fn status(&self, now: Millis, window_s: u64) -> ScheduleStatus {
        if self.paused {
            ScheduleStatus::Paused
        } else if now >= self.next_due_at {
            ScheduleStatus::Overdue
        } else if now >= self.next_due_at.minus_secs(window_s) {
            ScheduleStatus::Due
        } else {
            ScheduleStatus::Upcoming
        }
    }

    /// When its job is to be created, if one is to be.
    fn dispatch_at(&self) -> Option<Millis> {
        (!self.paused
            && self.open_job_id.is_none()
            && self.dispatched_for != Some(self.next_due_at))
        .then(|| self.next_due_at.minus_secs(self.lead_s))
    }

    /// The checks creating or changing it makes before anything changes.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if self.id.is_empty() || self.id.len() > 64 {
            return bad("id", "must be 1 to 64 bytes");
        }
        if self.title.trim().is_empty() || self.title.len() > MAX_TITLE_BYTES {
            return bad("title", "must be 1 to 200 bytes");
        }
        if self.description.len() > MAX_TEXT_BYTES {
            return bad("description", "must be at most 4096 bytes");
        }
        if self.lead_s > MAX_LEAD_S {
            return bad("lead_s", "must be 0 to 31622400");
        }
        let rule = self.rule()?;
        if rule.occurrence(0).is_none() || rule.step_from(self.start_at).is_none() {
            return bad("start_at", "out of range");
        }
        Ok(())
    }

    /// Where the schedule goes after work done at `done_at` (`now`: when
    /// it is recorded), and how many occurrences that skips as missed.
    pub fn roll(&self, done_at: Millis, now: Millis) -> Result<(Millis, u32), EngineError> {
        let rule = self.rule()?;
        let end = || EngineError::Conflict("the schedule has no further occurrence");
        match self.anchor {
            Anchor::Completion => Ok((rule.step_from(done_at).ok_or_else(end)?, 0)),
            Anchor::Due => {
                let (k1, n1) = rule.next_after(self.next_due_at).ok_or_else(end)?;
                if n1 > now {
                    return Ok((n1, 0));
                }
                let (k2, n2) = rule.next_after(now).ok_or_else(end)?;
                Ok((n2, u32::try_from(k2 - k1).unwrap_or(u32::MAX)))
            }
        }
    }

    /// `next_due_at` under a changed rule: the start if never done, else
    /// counted from the last time it was done (per the anchor).
    fn recompute(&self) -> Result<Millis, EngineError> {
        let Some(done) = self.last_done_at else {
            return Ok(self.start_at);
        };
        let rule = self.rule()?;
        let next = match self.anchor {
            Anchor::Completion => rule.step_from(done),
            Anchor::Due => rule.next_after(done).map(|(_, at)| at),
        };
        next.ok_or(EngineError::Conflict(
            "the schedule has no further occurrence",
        ))
    }
}

/// A completion log: work done on a schedule. Never changed or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub id: String,
    pub schedule_id: String,
    pub property_id: String,
    pub job_id: Option<JobId>,
    pub performed_by: String,
    pub performed_at: Millis,
    pub notes: String,
    pub issues_found: IssuesFound,
    pub attachments: Vec<String>,
    pub created_at: Millis,
}

impl Log {
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if self.id.is_empty() || self.id.len() > 200 {
            return bad("id", "must be 1 to 200 bytes");
        }
        if self.notes.len() > MAX_TEXT_BYTES {
            return bad("notes", "must be at most 4096 bytes");
        }
        crate::attachment::check_list(&self.attachments)
    }
}

/// The logs a listing asks for (both backends' stores answer it): those
/// of any of `schedules` (if given), of any of `properties` (if given),
/// performed in `[from, to]`, newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    pub schedules: Option<Vec<String>>,
    pub properties: Option<Vec<String>>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub limit: usize,
}

impl LogQuery {
    pub fn matches(&self, l: &Log) -> bool {
        self.schedules
            .as_ref()
            .is_none_or(|s| s.contains(&l.schedule_id))
            && self
                .properties
                .as_ref()
                .is_none_or(|p| p.contains(&l.property_id))
            && self.from.is_none_or(|f| l.performed_at >= f)
            && self.to.is_none_or(|t| l.performed_at <= t)
    }
}

/// How a schedule's roll moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roll {
    pub next_due_at: Millis,
    /// Occurrences skipped as missed (added to the schedule's count).
    pub missed: u32,
}

/// Every schedule, and the indexes the routes, the check and the
/// auto-dispatch read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceState {
    pub schedules: BTreeMap<String, Schedule>,
    /// When the last daily check ran.
    pub last_daily_check: Option<Millis>,
    #[serde(skip)]
    by_property: BTreeMap<String, BTreeSet<String>>,
    #[serde(skip)]
    by_worker: BTreeMap<WorkerId, BTreeSet<String>>,
    #[serde(skip)]
    by_due: BTreeSet<(Millis, String)>,
    /// (when its job is to be created, id).
    #[serde(skip)]
    pub(crate) dispatch_at: BTreeSet<(Millis, String)>,
}

impl MaintenanceState {
    /// Rebuilds the indexes (after a snapshot is read).
    pub(crate) fn reindex(&mut self) {
        self.by_property.clear();
        self.by_worker.clear();
        self.by_due.clear();
        self.dispatch_at.clear();
        let all: Vec<Schedule> = self.schedules.values().cloned().collect();
        for s in &all {
            self.file(s);
        }
    }

    fn file(&mut self, s: &Schedule) {
        self.by_property
            .entry(s.property_id.clone())
            .or_default()
            .insert(s.id.clone());
        if let Some(w) = &s.assigned_to {
            self.by_worker
                .entry(w.clone())
                .or_default()
                .insert(s.id.clone());
        }
        self.by_due.insert((s.next_due_at, s.id.clone()));
        if let Some(at) = s.dispatch_at() {
            self.dispatch_at.insert((at, s.id.clone()));
        }
    }

    fn unfile(&mut self, s: &Schedule) {
        if let Some(set) = self.by_property.get_mut(&s.property_id) {
            set.remove(&s.id);
            if set.is_empty() {
                self.by_property.remove(&s.property_id);
            }
        }
        if let Some(w) = &s.assigned_to {
            if let Some(set) = self.by_worker.get_mut(w) {
                set.remove(&s.id);
                if set.is_empty() {
                    self.by_worker.remove(w);
                }
            }
        }
        self.by_due.remove(&(s.next_due_at, s.id.clone()));
        if let Some(at) = s.dispatch_at() {
            self.dispatch_at.remove(&(at, s.id.clone()));
        }
    }

    /// Changes one schedule, keeping the indexes true.
    fn change(&mut self, id: &str, f: impl FnOnce(&mut Schedule)) {
        let Some(mut s) = self.schedules.remove(id) else {
            return;
        };
        self.unfile(&s);
        f(&mut s);
        self.file(&s);
        self.schedules.insert(s.id.clone(), s);
    }

    fn get(&self, id: &str) -> Result<&Schedule, EngineError> {
        self.schedules
            .get(id)
            .ok_or(EngineError::NotFound("schedule not found"))
    }

    /// Checks an event of this domain before it is applied.
    pub(crate) fn check(
        &self,
        kind: &EventKind,
        properties: &PropertyState,
    ) -> Result<(), EngineError> {
        match kind {
            EventKind::ScheduleCreated { schedule } => {
                schedule.validate()?;
                if self.schedules.contains_key(&schedule.id) {
                    return Err(EngineError::Conflict("a schedule with this id exists"));
                }
                if self.schedules.len() >= MAX_SCHEDULES {
                    return Err(EngineError::Conflict("too many schedules"));
                }
                if !properties.by_id.contains_key(&schedule.property_id) {
                    return Err(EngineError::InvalidInput {
                        field: "property_id",
                        reason: "no such property",
                    });
                }
                Ok(())
            }
            EventKind::ScheduleUpdated { schedule } => {
                let old = self.get(&schedule.id)?;
                if old.property_id != schedule.property_id {
                    return Err(EngineError::Corrupt("a schedule changed property".into()));
                }
                schedule.validate()
            }
            EventKind::ScheduleDeleted { id } => self.get(id).map(|_| ()),
            EventKind::MaintenanceLogged { log, roll } => {
                log.validate()?;
                if roll.is_some() {
                    self.get(&log.schedule_id)?;
                }
                Ok(())
            }
            EventKind::MaintenanceAlerted { schedule_id, .. } => self.get(schedule_id).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Applies an event of this domain (checked already).
    pub(crate) fn apply(&mut self, kind: &EventKind, at: Millis) {
        match kind {
            EventKind::ScheduleCreated { schedule } => {
                let s = (**schedule).clone();
                self.file(&s);
                self.schedules.insert(s.id.clone(), s);
            }
            EventKind::ScheduleUpdated { schedule } => {
                let new = (**schedule).clone();
                self.change(&schedule.id, |s| *s = new);
            }
            EventKind::ScheduleDeleted { id } => {
                if let Some(s) = self.schedules.remove(id) {
                    self.unfile(&s);
                }
            }
            EventKind::MaintenanceLogged { log, roll } => {
                let Some(roll) = roll else {
                    // Done without moving the schedule: its job is closed.
                    if let Some(job) = &log.job_id {
                        self.job_cancelled(&log.schedule_id, job);
                    }
                    return;
                };
                self.change(&log.schedule_id, |s| {
                    s.next_due_at = roll.next_due_at;
                    s.missed = s.missed.saturating_add(roll.missed);
                    s.last_done_at = Some(log.performed_at);
                    if log.job_id.is_none() || log.job_id == s.open_job_id {
                        s.open_job_id = None;
                    }
                    s.updated_at = at;
                });
            }
            EventKind::MaintenanceAlerted {
                schedule_id,
                alert,
                due_at,
            } => {
                if let Some(s) = self.schedules.get_mut(schedule_id) {
                    match alert {
                        AlertKind::Due => s.alerted_due = Some(*due_at),
                        AlertKind::Overdue => s.alerted_overdue = Some(*due_at),
                    }
                }
            }
            EventKind::MaintenanceChecked { daily: true, .. } => {
                self.last_daily_check = Some(at);
            }
            _ => {}
        }
    }

    /// A job is being created for schedule `id`: it must be there and
    /// have no open job.
    pub(crate) fn check_job(&self, id: &str) -> Result<(), EngineError> {
        let s = self.get(id)?;
        if s.open_job_id.is_some() {
            return Err(EngineError::Conflict("the schedule has an open job"));
        }
        Ok(())
    }

    /// Its job was created.
    pub(crate) fn job_opened(&mut self, id: &str, job: &JobId) {
        self.change(id, |s| {
            s.dispatched_for = Some(s.next_due_at);
            s.jobs_created = s.jobs_created.saturating_add(1);
            s.open_job_id = Some(job.clone());
        });
    }

    /// Its open job was cancelled (or ended without a roll): no new one
    /// for the same due date.
    pub(crate) fn job_cancelled(&mut self, id: &str, job: &JobId) {
        if self
            .schedules
            .get(id)
            .is_some_and(|s| s.open_job_id.as_ref() == Some(job))
        {
            self.change(id, |s| s.open_job_id = None);
        }
    }

    /// Schedule ids at a property.
    pub fn at_property(&self, property: &str) -> impl Iterator<Item = &String> + '_ {
        self.by_property.get(property).into_iter().flatten()
    }

    /// Schedule ids assigned to a worker.
    pub fn of_worker(&self, w: &WorkerId) -> impl Iterator<Item = &String> + '_ {
        self.by_worker.get(w).into_iter().flatten()
    }

    /// Every schedule by due date.
    pub fn by_due(&self) -> impl Iterator<Item = &Schedule> + '_ {
        self.by_due
            .iter()
            .filter_map(|(_, id)| self.schedules.get(id))
    }
}
