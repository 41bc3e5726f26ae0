//! Maintenance commands and queries: each command locks the job table
//! once, checks, and emits its events (the applier in `apply.rs` changes
//! the state). The auto-dispatch runs inside `tick`; the completion log
//! inside a worker's `complete` step — both in the same lock and the same
//! durable write as the change that caused them.

use serde::{Deserialize, Serialize};

use super::{AlertKind, Anchor, Every, IssuesFound, Log, Roll, Schedule, ScheduleStatus};
use crate::engine::{Engine, JobTable, MAX_DESCRIPTION_BYTES};
use crate::error::EngineError;
use crate::event::{Event, EventKind};
use crate::types::{JobId, Millis, ResidentId, Skill, WorkerId};

/// `PATCH /v1/schedules/{id}`: the fields given (`assigned_to:
/// Some(None)` clears it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulePatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub skill: Option<Skill>,
    pub every: Option<Every>,
    pub timezone: Option<String>,
    pub anchor: Option<Anchor>,
    pub lead_s: Option<u64>,
    #[serde(default, with = "set_or_clear")]
    pub assigned_to: Option<Option<WorkerId>>,
    pub paused: Option<bool>,
}

/// `Option<Option<T>>` kept apart through formats that write `Some(None)`
/// and `None` alike (MessagePack `nil`: the cluster's log): the inner
/// value travels in a one-element tuple.
mod set_or_clear {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|x| (x,)).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Ok(Option::<(Option<T>,)>::deserialize(d)?.map(|t| t.0))
    }
}

/// What one due/overdue check found and raised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Schedules examined: every one not paused.
    pub checked: u64,
    pub due: u64,
    pub overdue: u64,
    /// Alerts raised by this run (never twice per occurrence and state).
    pub alerts: u64,
}

/// Who lists schedules.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleViewer {
    Ops,
    Worker(WorkerId),
    Owner(ResidentId),
}

/// `GET /v1/schedules`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleQuery {
    pub viewer: ScheduleViewer,
    pub property_id: Option<String>,
    pub status: Option<ScheduleStatus>,
    pub due_before: Option<Millis>,
    pub limit: usize,
    pub now: Millis,
}

impl Engine {
    pub fn create_schedule(&self, s: Schedule, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let kind = EventKind::ScheduleCreated {
            schedule: Box::new(s),
        };
        self.emit(&mut t, &mut out, now, kind)?;
        self.dispatch_schedules(&mut t, &mut out, now);
        Ok(out)
    }

    /// Changes a schedule; a changed rule (`every`, `timezone`, `anchor`)
    /// recomputes `next_due_at`.
    pub fn update_schedule(
        &self,
        id: &str,
        patch: SchedulePatch,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let old = t.maintenance.get(id)?.clone();
        let mut s = old.clone();
        if let Some(v) = patch.title {
            s.title = v;
        }
        if let Some(v) = patch.description {
            s.description = v;
        }
        if let Some(v) = patch.skill {
            s.skill = v;
        }
        if let Some(v) = patch.every {
            s.every = v;
        }
        if let Some(v) = patch.timezone {
            s.timezone = v;
        }
        if let Some(v) = patch.anchor {
            s.anchor = v;
        }
        if let Some(v) = patch.lead_s {
            s.lead_s = v;
        }
        if let Some(v) = patch.assigned_to {
            s.assigned_to = v;
        }
        if let Some(v) = patch.paused {
            s.paused = v;
        }
        s.validate()?;
        if (s.every, &s.timezone, s.anchor) != (old.every, &old.timezone, old.anchor) {
            s.next_due_at = s.recompute()?;
        }
        s.updated_at = now;
        let mut out = Vec::new();
        let kind = EventKind::ScheduleUpdated {
            schedule: Box::new(s),
        };
        self.emit(&mut t, &mut out, now, kind)?;
        self.dispatch_schedules(&mut t, &mut out, now);
        Ok(out)
    }

    /// Deletes a schedule (its logs stay; an open job carries on).
    pub fn delete_schedule(&self, id: &str, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        t.maintenance.get(id)?;
        let mut out = Vec::new();
        let kind = EventKind::ScheduleDeleted { id: id.to_owned() };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    /// `POST /v1/logs`: work done by hand. The log takes the schedule's
    /// property and rolls the schedule in the same event.
    pub fn write_log(&self, mut log: Log, now: Millis) -> Result<Vec<Event>, EngineError> {
        log.validate()?;
        let mut t = self.jobs.lock();
        let s = t.maintenance.get(&log.schedule_id)?;
        log.property_id = s.property_id.clone();
        let (next_due_at, missed) = s.roll(log.performed_at, now)?;
        let mut out = Vec::new();
        let kind = EventKind::MaintenanceLogged {
            log: Box::new(log),
            roll: Some(Roll {
                next_due_at,
                missed,
            }),
        };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    /// The due/overdue check: one alert per schedule, occurrence and
    /// state, then a `MaintenanceChecked` with the report (`daily`: the
    /// scheduled run, remembered so it runs once a day).
    pub fn maintenance_check(&self, daily: bool, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let window = self.cfg.due_window_s;
        let mut report = CheckReport::default();
        let mut raise = Vec::new();
        for s in t.maintenance.schedules.values() {
            let alert = match s.status(now, window) {
                ScheduleStatus::Paused => continue,
                ScheduleStatus::Upcoming => {
                    report.checked += 1;
                    continue;
                }
                ScheduleStatus::Due => {
                    report.due += 1;
                    AlertKind::Due
                }
                ScheduleStatus::Overdue => {
                    report.overdue += 1;
                    AlertKind::Overdue
                }
            };
            report.checked += 1;
            let sent = match alert {
                AlertKind::Due => s.alerted_due,
                AlertKind::Overdue => s.alerted_overdue,
            };
            if sent != Some(s.next_due_at) {
                raise.push((s.id.clone(), alert, s.next_due_at));
            }
        }
        let mut out = Vec::new();
        for (schedule_id, alert, due_at) in raise {
            let kind = EventKind::MaintenanceAlerted {
                schedule_id,
                alert,
                due_at,
            };
            self.emit(&mut t, &mut out, now, kind)?;
            report.alerts += 1;
        }
        self.emit(
            &mut t,
            &mut out,
            now,
            EventKind::MaintenanceChecked { daily, report },
        )?;
        Ok(out)
    }

    pub fn schedule(&self, id: &str) -> Option<Schedule> {
        self.jobs.lock().maintenance.schedules.get(id).cloned()
    }

    /// When the daily check last ran.
    pub fn last_daily_check(&self) -> Option<Millis> {
        self.jobs.lock().maintenance.last_daily_check
    }

    /// Schedules a viewer may list, filtered, by `next_due_at`.
    pub fn list_schedules(&self, q: &ScheduleQuery) -> Vec<Schedule> {
        let t = self.jobs.lock();
        let m = &t.maintenance;
        let window = self.cfg.due_window_s;
        let keep = |s: &Schedule| {
            q.property_id.as_ref().is_none_or(|p| &s.property_id == p)
                && q.status.is_none_or(|st| s.status(q.now, window) == st)
                && q.due_before.is_none_or(|d| s.next_due_at < d)
        };
        let mut v: Vec<&Schedule> = match &q.viewer {
            ScheduleViewer::Ops => {
                if let Some(p) = &q.property_id {
                    m.at_property(p)
                        .filter_map(|id| m.schedules.get(id))
                        .filter(|s| keep(s))
                        .collect()
                } else {
                    // Already in due order: stop at the limit.
                    return m
                        .by_due()
                        .take_while(|s| q.due_before.is_none_or(|d| s.next_due_at < d))
                        .filter(|s| keep(s))
                        .take(q.limit)
                        .cloned()
                        .collect();
                }
            }
            ScheduleViewer::Worker(w) => m
                .of_worker(w)
                .filter_map(|id| m.schedules.get(id))
                .filter(|s| keep(s))
                .collect(),
            ScheduleViewer::Owner(r) => t
                .properties
                .owned_by(r)
                .flat_map(|p| m.at_property(&p.id))
                .filter_map(|id| m.schedules.get(id))
                .filter(|s| keep(s))
                .collect(),
        };
        v.sort_by(|a, b| (a.next_due_at, &a.id).cmp(&(b.next_due_at, &b.id)));
        v.into_iter().take(q.limit).cloned().collect()
    }

    /// Whether `viewer` may see schedule `s`.
    pub fn may_see_schedule(&self, viewer: &ScheduleViewer, s: &Schedule) -> bool {
        match viewer {
            ScheduleViewer::Ops => true,
            ScheduleViewer::Worker(w) => s.assigned_to.as_ref() == Some(w),
            ScheduleViewer::Owner(r) => self
                .property(&s.property_id)
                .is_some_and(|p| &p.owner_id == r),
        }
    }

    /// Creates the job of every schedule whose time has come (`tick`).
    pub(crate) fn dispatch_schedules(&self, t: &mut JobTable, out: &mut Vec<Event>, now: Millis) {
        while let Some((at, id)) = t.maintenance.dispatch_at.first().cloned() {
            if at > now {
                break;
            }
            if self.schedule_job(t, out, &id, now).is_err() {
                // Refused (cannot happen for a schedule that passed its
                // checks): never spin on it.
                t.maintenance.dispatch_at.remove(&(at, id));
            }
        }
    }

    fn schedule_job(
        &self,
        t: &mut JobTable,
        out: &mut Vec<Event>,
        id: &str,
        now: Millis,
    ) -> Result<(), EngineError> {
        let s = t.maintenance.get(id)?;
        let p = t
            .properties
            .by_id
            .get(&s.property_id)
            .ok_or(EngineError::NotFound("property not found"))?;
        let mut description = s.title.clone();
        if !s.description.is_empty() {
            description.push_str(" — ");
            description.push_str(&s.description);
        }
        truncate(&mut description, MAX_DESCRIPTION_BYTES);
        let kind = EventKind::JobCreated {
            job_id: JobId::from(format!("mnt_{}_{}", s.id, s.jobs_created + 1)),
            resident_id: p.owner_id.clone(),
            lat: p.lat,
            lng: p.lng,
            skill: s.skill.clone(),
            description,
            search_deadline: now.plus_secs(self.cfg.search_timeout_s),
            property_id: Some(p.id.clone()),
            schedule_id: Some(s.id.clone()),
            parts: Vec::new(),
            urgency: crate::triage::Urgency::Normal,
            triage: None,
            estimate_cents: t.triage.estimate_for(s.skill.as_str()),
            attachments: Vec::new(),
        };
        self.emit(t, out, now, kind)?;
        let seq = t.last_job;
        self.dispatch(t, out, seq, now);
        Ok(())
    }

    /// The log a schedule's completed job writes (with the roll, when it
    /// was the schedule's open job), if the job belongs to a schedule.
    pub(crate) fn completion_log(&self, t: &JobTable, seq: u64, now: Millis) -> Option<EventKind> {
        let job = t.jobs.get(&seq)?;
        let sid = job.schedule_id.as_ref()?;
        let roll = t
            .maintenance
            .schedules
            .get(sid)
            .filter(|s| s.open_job_id.as_ref() == Some(&job.id))
            .and_then(|s| s.roll(now, now).ok())
            .map(|(next_due_at, missed)| Roll {
                next_due_at,
                missed,
            });
        let log = Log {
            id: format!("log_{}", job.id),
            schedule_id: sid.clone(),
            property_id: job.property_id.clone().unwrap_or_default(),
            job_id: Some(job.id.clone()),
            performed_by: job
                .worker_id
                .as_ref()
                .map(|w| w.as_str().to_owned())
                .unwrap_or_default(),
            performed_at: now,
            notes: String::new(),
            issues_found: IssuesFound::None,
            attachments: Vec::new(),
            created_at: now,
        };
        Some(EventKind::MaintenanceLogged {
            log: Box::new(log),
            roll,
        })
    }
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
