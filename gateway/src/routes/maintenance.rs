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
use crate::auth::{CalendarUser, User};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::{known_id, rfc3339, PathIds};

/// The calendar feed covers this far back (logs) and ahead (occurrences).
const FEED_DAYS: u64 = 90;
/// Most occurrences one schedule contributes to the feed.
const FEED_PER_SCHEDULE: usize = 100;
/// Most schedules and logs in one feed.
const FEED_SCHEDULES: usize = 5_000;
const FEED_LOGS: usize = 5_000;

#[derive(Serialize, Deserialize)]
pub struct EveryView {
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
#[derive(Serialize)]
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
    anchor: &'static str,
    lead_s: u64,
    assigned_to: Option<String>,
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

fn view(app: &AppState, s: &Schedule) -> ScheduleView {
    ScheduleView::new(
        s,
        s.status(app.clock.now(), app.cfg.maintenance.due_window_s),
    )
}

/// The contract's `Log`.
#[derive(Serialize)]
pub struct LogView {
    id: String,
    schedule_id: String,
    property_id: String,
    job_id: Option<String>,
    performed_by: String,
    performed_at: String,
    notes: String,
    issues_found: &'static str,
    attachments: Vec<String>,
    created_at: String,
}

impl From<&Log> for LogView {
    fn from(l: &Log) -> LogView {
        LogView {
            id: l.id.clone(),
            schedule_id: l.schedule_id.clone(),
            property_id: l.property_id.clone(),
            job_id: l.job_id.as_ref().map(|j| j.as_str().to_owned()),
            performed_by: l.performed_by.clone(),
            performed_at: rfc3339(l.performed_at),
            notes: l.notes.clone(),
            issues_found: l.issues_found.as_str(),
            attachments: l.attachments.clone(),
            created_at: rfc3339(l.created_at),
        }
    }
}

/// An RFC 3339 instant; `field` names it in the error.
fn instant(field: &str, raw: &str) -> Result<Millis, ApiError> {
    raw.parse::<jiff::Timestamp>()
        .map(|t| Millis(t.as_millisecond()))
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time"))
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
    let is_worker = raw.len() <= 128
        && core
            .account(raw)
            .await?
            .is_some_and(|a| a.role == Role::Worker);
    if !is_worker {
        return Err(ApiError::invalid("assigned_to", "must be a worker's id"));
    }
    Ok(raw.into())
}

fn viewer(user: &User) -> ScheduleViewer {
    match user.role {
        Role::Ops => ScheduleViewer::Ops,
        Role::Worker => ScheduleViewer::Worker(user.id.as_ref().into()),
        Role::Resident => ScheduleViewer::Owner(user.id.as_ref().into()),
    }
}

/// The schedule if `user` may see it, else 404.
fn visible(core: &Core, user: &User, id: &str) -> Result<Schedule, ApiError> {
    let id = known_id(id, "schedule not found")?;
    core.engine
        .schedule(id)
        .filter(|s| core.engine.may_see_schedule(&viewer(user), s))
        .ok_or(ApiError::NotFound("schedule not found"))
}

#[derive(Deserialize)]
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
    anchor: Option<String>,
    #[serde(default)]
    lead_s: Option<i64>,
    #[serde(default)]
    assigned_to: Option<String>,
}

pub async fn create(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<NewSchedule>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    user.require(&[Role::Ops])?;
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
        timezone: req.timezone.unwrap_or_else(|| "UTC".to_owned()),
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

#[derive(Serialize)]
pub struct ScheduleList {
    schedules: Vec<ScheduleView>,
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    Ok(params.num("limit", 1usize..=500)?.unwrap_or(50))
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
    let due_before = params
        .0
        .get("due_before")
        .map(|s| instant("due_before", s))
        .transpose()?;
    let q = ScheduleQuery {
        viewer: viewer(&user),
        property_id: params.0.get("property_id").cloned(),
        status,
        due_before,
        limit: limit(&params)?,
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

#[derive(Deserialize)]
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
    user: User,
    PathIds(id): PathIds<String>,
    Input(req): Input<Patch>,
) -> Result<Json<ScheduleView>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let s = visible(core, &user, &id)?;
    let assigned_to = match req.assigned_to {
        Some(Some(w)) => Some(Some(worker_id(core, &w).await?)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(tz) = &req.timezone {
        recurrence::zone(tz)?;
    }
    let patch = engine::maintenance::SchedulePatch {
        title: req.title,
        description: req.description,
        skill: req.skill.as_deref().map(skill).transpose()?,
        every: req.every.as_ref().map(EveryView::parse).transpose()?,
        timezone: req.timezone,
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
    user: User,
    PathIds(id): PathIds<String>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let s = visible(core, &user, &id)?;
    core.exec(&app, Op::DeleteSchedule { id: s.id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct NewLog {
    schedule_id: String,
    #[serde(default)]
    performed_at: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    issues_found: String,
    #[serde(default)]
    attachments: Option<Vec<String>>,
}

pub async fn create_log(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<NewLog>,
) -> Result<(StatusCode, Json<LogView>), ApiError> {
    user.require(&[Role::Worker, Role::Ops])?;
    let core = app.core()?;
    let now = app.clock.now();
    let s = visible(core, &user, &req.schedule_id)?;
    let performed_at = match &req.performed_at {
        Some(raw) => instant("performed_at", raw)?,
        None => now,
    };
    if performed_at > now.plus_secs(300) {
        return Err(ApiError::invalid(
            "performed_at",
            "must not be in the future",
        ));
    }
    let issues_found = IssuesFound::parse(&req.issues_found)
        .ok_or_else(|| ApiError::invalid("issues_found", "must be none, minor or major"))?;
    let log = Log {
        id: format!("log_{}", uuid::Uuid::new_v4().simple()),
        schedule_id: s.id.clone(),
        property_id: s.property_id.clone(),
        job_id: None,
        performed_by: user.id.to_string(),
        performed_at,
        notes: req.notes.unwrap_or_default(),
        issues_found,
        attachments: req.attachments.unwrap_or_default(),
        created_at: now,
    };
    log.validate()?;
    let applied = core.exec(&app, Op::WriteLog(Box::new(log))).await?;
    let made = applied.events.iter().find_map(|e| match &e.kind {
        EventKind::MaintenanceLogged { log, .. } => Some(LogView::from(&**log)),
        _ => None,
    });
    made.map(|l| (StatusCode::CREATED, Json(l)))
        .ok_or_else(|| ApiError::Unavailable("log not applied".into()))
}

#[derive(Serialize)]
pub struct LogList {
    logs: Vec<LogView>,
}

/// The logs `user` may read, with the listing's filters.
async fn logs_for(
    app: &AppState,
    core: &Core,
    user: &User,
    params: &Params,
    limit: usize,
) -> Result<Vec<Log>, ApiError> {
    let from = params
        .0
        .get("from")
        .map(|s| instant("from", s))
        .transpose()?;
    let to = params.0.get("to").map(|s| instant("to", s)).transpose()?;
    let schedule = params.0.get("schedule_id").cloned();
    let property = params.0.get("property_id").cloned();
    core.settled(app).await?;
    let (schedules, properties) = match user.role {
        Role::Ops => (schedule.map(|s| vec![s]), property.map(|p| vec![p])),
        Role::Worker => {
            let q = ScheduleQuery {
                viewer: viewer(user),
                property_id: None,
                status: None,
                due_before: None,
                limit: usize::MAX,
                now: app.clock.now(),
            };
            let mine: Vec<String> = core
                .engine
                .list_schedules(&q)
                .into_iter()
                .map(|s| s.id)
                .collect();
            let schedules = match schedule {
                Some(s) if mine.contains(&s) => vec![s],
                Some(_) => return Err(ApiError::NotFound("schedule not found")),
                None => mine,
            };
            (Some(schedules), property.map(|p| vec![p]))
        }
        Role::Resident => {
            let owner = user.id.as_ref().into();
            let mine: Vec<String> = core
                .engine
                .properties(Some(&owner), engine::property::MAX_PER_OWNER)
                .into_iter()
                .map(|p| p.id)
                .collect();
            let properties = match property {
                Some(p) if mine.contains(&p) => vec![p],
                Some(_) => return Err(ApiError::NotFound("property not found")),
                None => mine,
            };
            (schedule.map(|s| vec![s]), Some(properties))
        }
    };
    let q = LogQuery {
        schedules,
        properties,
        from,
        to,
        limit,
    };
    if q.schedules.as_ref().is_some_and(Vec::is_empty)
        || q.properties.as_ref().is_some_and(Vec::is_empty)
    {
        return Ok(Vec::new());
    }
    core.backend.logs(&q).await
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .any(|t| t.split(';').next().unwrap_or("").trim() == "text/csv")
        })
}

pub async fn list_logs(
    State(app): State<AppState>,
    user: User,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let core = app.core()?;
    let logs = logs_for(&app, core, &user, &params, limit(&params)?).await?;
    if wants_csv(&headers) {
        return Ok((
            [(
                header::CONTENT_TYPE,
                "text/csv; charset=utf-8; header=present",
            )],
            csv_of(&logs)?,
        )
            .into_response());
    }
    let logs = logs.iter().map(LogView::from).collect();
    Ok(Json(LogList { logs }).into_response())
}

/// RFC 4180: a header row, CRLF line ends, fields quoted where needed.
fn csv_of(logs: &[Log]) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let fail = |_| ApiError::Unavailable("CSV could not be written".into());
    w.write_record([
        "id",
        "schedule_id",
        "property_id",
        "job_id",
        "performed_by",
        "performed_at",
        "issues_found",
        "notes",
        "attachments",
        "created_at",
    ])
    .map_err(fail)?;
    for l in logs {
        w.write_record([
            l.id.as_str(),
            &l.schedule_id,
            &l.property_id,
            l.job_id.as_ref().map_or("", |j| j.as_str()),
            &l.performed_by,
            &rfc3339(l.performed_at),
            l.issues_found.as_str(),
            &l.notes,
            &l.attachments.join(" "),
            &rfc3339(l.created_at),
        ])
        .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|_| ApiError::Unavailable("CSV could not be written".into()))
}

/// `GET /v1/schedules.ics`: the caller's schedules' occurrences in the
/// next 90 days and their logs of the last 90, one `VEVENT` each.
pub async fn calendar(
    State(app): State<AppState>,
    CalendarUser(user): CalendarUser,
) -> Result<Response, ApiError> {
    let core = app.core()?;
    let now = app.clock.now();
    let from = now.minus_secs(FEED_DAYS * 86_400);
    let to = now.plus_secs(FEED_DAYS * 86_400);
    core.settled(&app).await?;
    let q = ScheduleQuery {
        viewer: viewer(&user),
        property_id: None,
        status: None,
        due_before: None,
        limit: FEED_SCHEDULES,
        now,
    };
    let schedules = core.engine.list_schedules(&q);
    let logs = if schedules.is_empty() {
        Vec::new()
    } else {
        let lq = LogQuery {
            schedules: Some(schedules.iter().map(|s| s.id.clone()).collect()),
            properties: None,
            from: Some(from),
            to: Some(now),
            limit: FEED_LOGS,
        };
        core.backend.logs(&lq).await?
    };
    let mut cal = crate::ics::Calendar::new("dispatchd maintenance");
    let mut zones: Vec<&str> = schedules
        .iter()
        .map(|s| s.timezone.as_str())
        .filter(|z| *z != "UTC")
        .collect();
    zones.sort_unstable();
    zones.dedup();
    let mut resolved = Vec::new();
    for z in zones {
        if let Ok(tz) = recurrence::zone(z) {
            cal.timezone(z, &tz, from.minus_secs(86_400), to.plus_secs(86_400));
            resolved.push((z, tz));
        }
    }
    let zone_of = |name: &str| {
        resolved
            .iter()
            .find(|(z, _)| *z == name)
            .map(|(z, tz)| (*z, tz))
    };
    let stamp = jiff::Timestamp::from_millisecond(now.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let dtstamp = crate::ics::utc(stamp);
    let places: std::collections::HashMap<String, engine::Property> = schedules
        .iter()
        .filter_map(|s| core.engine.property(&s.property_id))
        .map(|p| (p.id.clone(), p))
        .collect();
    for s in &schedules {
        let tz = zone_of(&s.timezone);
        let place = places.get(&s.property_id);
        for at in occurrences(s, to) {
            let mut e = cal.begin("VEVENT");
            e.prop("UID", &format!("{}-{}@dispatchd", s.id, at.0));
            e.prop("DTSTAMP", &dtstamp);
            e.time("DTSTART", at, tz);
            e.prop("DURATION", "PT1H");
            e.text("SUMMARY", &s.title);
            let mut what = format!(
                "{} ({}), every {} {}",
                s.title,
                s.skill.as_str(),
                s.every.interval,
                s.every.unit.as_str()
            );
            if !s.description.is_empty() {
                what.push('\n');
                what.push_str(&s.description);
            }
            e.text("DESCRIPTION", &what);
            if let Some(p) = place {
                let mut loc = p.name.clone();
                if let Some(a) = &p.address {
                    loc.push_str(", ");
                    loc.push_str(a);
                }
                e.text("LOCATION", &loc);
                e.prop("GEO", &format!("{:.6};{:.6}", p.lat, p.lng));
            }
            e.text("CATEGORIES", "MAINTENANCE");
            e.prop("STATUS", "CONFIRMED");
            e.end();
        }
    }
    let titles: std::collections::HashMap<&str, &Schedule> =
        schedules.iter().map(|s| (s.id.as_str(), s)).collect();
    for l in &logs {
        let title = titles
            .get(l.schedule_id.as_str())
            .map_or("maintenance", |s| s.title.as_str());
        let mut e = cal.begin("VEVENT");
        e.prop("UID", &format!("{}@dispatchd", l.id));
        e.prop("DTSTAMP", &dtstamp);
        e.time("DTSTART", l.performed_at, None);
        e.prop("DURATION", "PT1H");
        e.text("SUMMARY", &format!("Done: {title}"));
        let mut what = format!("Issues found: {}", l.issues_found.as_str());
        if !l.notes.is_empty() {
            what.push('\n');
            what.push_str(&l.notes);
        }
        e.text("DESCRIPTION", &what);
        e.text("CATEGORIES", "MAINTENANCE,DONE");
        e.prop("STATUS", "CONFIRMED");
        e.end();
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        cal.finish(),
    )
        .into_response())
}

/// A schedule's due dates from `next_due_at` up to `to` (none when paused).
fn occurrences(s: &Schedule, to: Millis) -> Vec<Millis> {
    let mut out = Vec::new();
    if s.paused {
        return out;
    }
    let Ok(rule) = s.rule() else { return out };
    let mut at = s.next_due_at;
    while at < to && out.len() < FEED_PER_SCHEDULE {
        out.push(at);
        let next = match s.anchor {
            Anchor::Due => rule.next_after(at).map(|(_, n)| n),
            Anchor::Completion => rule.step_from(at),
        };
        match next {
            Some(n) if n > at => at = n,
            _ => break,
        }
    }
    out
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
