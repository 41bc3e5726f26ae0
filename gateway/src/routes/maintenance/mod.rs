//! Maintenance programmes (API.md v1.1): schedules (`/v1/schedules`),
//! completion logs (`/v1/logs`, JSON or CSV), the calendar feed
//! (`/v1/schedules.ics`) and the due/overdue check
//! (`POST /v1/ops/maintenance/check`). Ops manage schedules; a worker sees
//! those assigned to them; a resident those at their properties; anyone
//! else gets 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::maintenance::{
    recurrence, Anchor, CheckReport, Every, IssuesFound, ScheduleQuery, ScheduleStatus,
    ScheduleViewer, StepUnit,
};
use engine::{EventKind, Log, LogQuery, Millis, Op, Schedule, Skill};
use persistence::Role;
use serde::{Deserialize, Deserializer, Serialize};

use crate::app::{AppState, Core};
use crate::auth::{may, Allowed, CalendarUser, User};
use crate::body::{instant, Input, Params};
use crate::error::ApiError;
use crate::wire::{known_id, rfc3339, PathIds};

pub mod calendar;
pub mod logs;

pub use calendar::calendar;
pub use logs::{create_log, list_logs, may_read_log, LogView, NewLog};

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct EveryView {
    #[schema(value_type = crate::openapi::StepUnit)]
    unit: String,
    interval: i64,
}

impl EveryView {
    fn parse(&self) -> Result<Every, ApiError> {
        let unit = StepUnit::parse(&self.unit)
            .ok_or_else(|| ApiError::invalid("every.unit", "must be day, week, month or year"))?;
        let interval = u32::try_from(self.interval)
            .ok()
            .filter(|i| (1..=recurrence::MAX_INTERVAL).contains(i))
            .ok_or_else(|| ApiError::invalid("every.interval", "must be an integer 1 to 1000"))?;
        Ok(Every { unit, interval })
    }
}

/// The contract's `Schedule`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    id: String,
    property_id: String,
    title: String,
    skill: String,
    description: String,
    every: EveryView,
    timezone: String,
    start_at: String,
    next_due_at: String,
    #[schema(value_type = crate::openapi::Anchor)]
    anchor: &'static str,
    lead_s: u64,
    assigned_to: Option<String>,
    #[schema(value_type = crate::openapi::ScheduleStatus)]
    status: &'static str,
    open_job_id: Option<String>,
    missed: u32,
    created_at: String,
    updated_at: String,
}

impl ScheduleView {
    pub fn new(s: &Schedule, status: ScheduleStatus) -> ScheduleView {
        ScheduleView {
            id: s.id.clone(),
            property_id: s.property_id.clone(),
            title: s.title.clone(),
            skill: s.skill.as_str().to_owned(),
            description: s.description.clone(),
            every: EveryView {
                unit: s.every.unit.as_str().to_owned(),
                interval: i64::from(s.every.interval),
            },
            timezone: s.timezone.clone(),
            start_at: rfc3339(s.start_at),
            next_due_at: rfc3339(s.next_due_at),
            anchor: s.anchor.as_str(),
            lead_s: s.lead_s,
            assigned_to: s.assigned_to.as_ref().map(|w| w.as_str().to_owned()),
            status: status.as_str(),
            open_job_id: s.open_job_id.as_ref().map(|j| j.as_str().to_owned()),
            missed: s.missed,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
        }
    }

    /// As an alert raised it (its status is the alert's).
    pub fn at(s: &Schedule, alert: engine::maintenance::AlertKind) -> ScheduleView {
        let status = match alert {
            engine::maintenance::AlertKind::Due => ScheduleStatus::Due,
            engine::maintenance::AlertKind::Overdue => ScheduleStatus::Overdue,
        };
        ScheduleView::new(s, status)
    }
}

pub(super) fn view(app: &AppState, s: &Schedule) -> ScheduleView {
    ScheduleView::new(
        s,
        s.status(app.clock.now(), app.cfg.maintenance.due_window_s),
    )
}

fn skill(raw: &str) -> Result<Skill, ApiError> {
    Skill::new(raw).map_err(|_| ApiError::invalid("skill", "must match [a-z0-9_-]{1,32}"))
}

fn anchor(raw: &str) -> Result<Anchor, ApiError> {
    Anchor::parse(raw).ok_or_else(|| ApiError::invalid("anchor", "must be due or completion"))
}

fn lead(raw: i64) -> Result<u64, ApiError> {
    u64::try_from(raw)
        .ok()
        .filter(|l| *l <= engine::maintenance::MAX_LEAD_S)
        .ok_or_else(|| ApiError::invalid("lead_s", "must be an integer 0 to 31622400"))
}

/// `assigned_to` must be a worker's id.
async fn worker_id(core: &Core, raw: &str) -> Result<engine::WorkerId, ApiError> {
    if !core.is_account(raw, Role::Worker).await? {
        return Err(ApiError::invalid("assigned_to", "must be a worker's id"));
    }
    Ok(raw.into())
}

pub(super) fn viewer(user: &User) -> ScheduleViewer {
    match user.role {
        Role::Ops => ScheduleViewer::Ops,
        Role::Worker => ScheduleViewer::Worker(user.id.as_ref().into()),
        Role::Resident => ScheduleViewer::Owner(user.id.as_ref().into()),
    }
}

/// The schedule if `user` may see it, else 404.
pub(super) fn visible(core: &Core, user: &User, id: &str) -> Result<Schedule, ApiError> {
    let id = known_id(id, "schedule not found")?;
    core.engine
        .schedule(id)
        .filter(|s| core.engine.may_see_schedule(&viewer(user), s))
        .ok_or(ApiError::NotFound("schedule not found"))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewSchedule {
    property_id: String,
    title: String,
    skill: String,
    #[serde(default)]
    description: Option<String>,
    every: EveryView,
    #[serde(default)]
    timezone: Option<String>,
    start_at: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Anchor>)]
    anchor: Option<String>,
    #[serde(default)]
    lead_s: Option<i64>,
    #[serde(default)]
    assigned_to: Option<String>,
}

pub async fn create(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS }>,
    Input(req): Input<NewSchedule>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let core = app.core()?;
    let now = app.clock.now();
    let property = crate::routes::properties::usable(&core.engine, &user, &req.property_id)?;
    let start_at = instant("start_at", &req.start_at)?;
    let assigned_to = match &req.assigned_to {
        Some(w) => Some(worker_id(core, w).await?),
        None => None,
    };
    let schedule = Schedule {
        id: format!("sch_{}", uuid::Uuid::new_v4().simple()),
        property_id: property.id,
        title: req.title,
        skill: skill(&req.skill)?,
        description: req.description.unwrap_or_default(),
        every: req.every.parse()?,
        timezone: match &req.timezone {
            Some(z) => recurrence::canonical_zone(z)?,
            None => "UTC".to_owned(),
        },
        start_at,
        next_due_at: start_at,
        anchor: req
            .anchor
            .as_deref()
            .map(anchor)
            .transpose()?
            .unwrap_or(Anchor::Due),
        lead_s: req.lead_s.map(lead).transpose()?.unwrap_or(0),
        assigned_to,
        paused: false,
        open_job_id: None,
        missed: 0,
        created_at: now,
        updated_at: now,
        dispatched_for: None,
        jobs_created: 0,
        last_done_at: None,
        alerted_due: None,
        alerted_overdue: None,
    };
    // Checked first so a cluster never logs a command bound to fail.
    schedule.validate()?;
    let id = schedule.id.clone();
    core.exec(&app, Op::CreateSchedule(Box::new(schedule)))
        .await?;
    let s = core
        .engine
        .schedule(&id)
        .ok_or_else(|| ApiError::Unavailable("schedule not applied".into()))?;
    Ok((StatusCode::CREATED, Json(view(&app, &s))))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    schedules: Vec<ScheduleView>,
}

pub async fn list(
    State(app): State<AppState>,
    user: User,
    params: Params,
) -> Result<Json<ScheduleList>, ApiError> {
    let core = app.core()?;
    let status = params
        .0
        .get("status")
        .map(|s| {
            ScheduleStatus::parse(s).ok_or_else(|| {
                ApiError::invalid("status", "must be upcoming, due, overdue or paused")
            })
        })
        .transpose()?;
    let due_before = params.time("due_before")?;
    let q = ScheduleQuery {
        viewer: viewer(&user),
        property_id: params.0.get("property_id").cloned(),
        status,
        due_before,
        limit: params.limit()?,
        now: app.clock.now(),
    };
    core.settled(&app).await?;
    let schedules = core
        .engine
        .list_schedules(&q)
        .iter()
        .map(|s| view(&app, s))
        .collect();
    Ok(Json(ScheduleList { schedules }))
}

pub async fn get(
    State(app): State<AppState>,
    user: User,
    PathIds(id): PathIds<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let core = app.core()?;
    core.settled(&app).await?;
    let s = visible(core, &user, &id)?;
    Ok(Json(view(&app, &s)))
}

/// `Some(None)` for an explicit `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A field not listed here (`id`, `property_id`, `next_due_at` …) is 400
/// naming it: it cannot be changed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    skill: Option<String>,
    #[serde(default)]
    every: Option<EveryView>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Anchor>)]
    anchor: Option<String>,
    #[serde(default)]
    lead_s: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    assigned_to: Option<Option<String>>,
    #[serde(default)]
    paused: Option<bool>,
}

pub async fn update(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
    Input(req): Input<Patch>,
) -> Result<Json<ScheduleView>, ApiError> {
    let core = app.core()?;
    let s = visible(core, &user, &id)?;
    let assigned_to = match req.assigned_to {
        Some(Some(w)) => Some(Some(worker_id(core, &w).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let timezone = req
        .timezone
        .as_deref()
        .map(recurrence::canonical_zone)
        .transpose()?;
    let patch = engine::maintenance::SchedulePatch {
        title: req.title,
        description: req.description,
        skill: req.skill.as_deref().map(skill).transpose()?,
        every: req.every.as_ref().map(EveryView::parse).transpose()?,
        timezone,
        anchor: req.anchor.as_deref().map(anchor).transpose()?,
        lead_s: req.lead_s.map(lead).transpose()?,
        assigned_to,
        paused: req.paused,
    };
    let op = Op::UpdateSchedule {
        id: s.id.clone(),
        patch: Box::new(patch),
    };
    core.exec(&app, op).await?;
    let s = core
        .engine
        .schedule(&s.id)
        .ok_or(ApiError::NotFound("schedule not found"))?;
    Ok(Json(view(&app, &s)))
}

pub async fn delete(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<StatusCode, ApiError> {
    let core = app.core()?;
    let s = visible(core, &user, &id)?;
    core.exec(&app, Op::DeleteSchedule { id: s.id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/ops/maintenance/check`.
pub async fn check(State(app): State<AppState>, user: User) -> Result<Json<CheckReport>, ApiError> {
    user.require(&[Role::Ops])?;
    let key: Arc<str> = Arc::from("maintenance-check");
    app.limits
        .check(crate::limits::Budget::MaintenanceCheck, &key)?;
    let core = app.core()?;
    Ok(Json(run_check(&app, core, false).await?))
}

/// Runs the check through the backend and counts what it did.
pub async fn run_check(app: &AppState, core: &Core, daily: bool) -> Result<CheckReport, ApiError> {
    let applied = match core.exec(app, Op::MaintenanceCheck { daily }).await {
        Ok(a) => a,
        Err(e) => {
            app.metrics.maintenance_check_failed();
            return Err(e.into());
        }
    };
    let report = applied
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::MaintenanceChecked { report, .. } => Some(*report),
            _ => None,
        })
        .ok_or_else(|| ApiError::Unavailable("check not applied".into()))?;
    let mut due = 0;
    let mut overdue = 0;
    for e in &applied.events {
        if let EventKind::MaintenanceAlerted { alert, .. } = &e.kind {
            match alert {
                engine::maintenance::AlertKind::Due => due += 1,
                engine::maintenance::AlertKind::Overdue => overdue += 1,
            }
        }
    }
    app.metrics
        .maintenance_checked(report.checked, due, overdue);
    Ok(report)
}
