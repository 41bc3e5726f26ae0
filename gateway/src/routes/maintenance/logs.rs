//! Completion logs: `POST /v1/logs` by hand, and `GET /v1/logs` as JSON
//! or RFC 4180 CSV for the logs the caller may read.

use super::*;

/// The contract's `Log`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LogView {
    id: String,
    schedule_id: String,
    property_id: String,
    job_id: Option<String>,
    performed_by: String,
    performed_at: String,
    notes: String,
    #[schema(value_type = crate::openapi::IssuesFound)]
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewLog {
    schedule_id: String,
    #[serde(default)]
    performed_at: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[schema(value_type = crate::openapi::IssuesFound)]
    issues_found: String,
    #[serde(default)]
    attachments: Option<Vec<String>>,
}

pub async fn create_log(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::WORKER | may::OPS }>,
    Input(req): Input<NewLog>,
) -> Result<(StatusCode, Json<LogView>), ApiError> {
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
    crate::routes::attachments::own_uploads(core, &user.id, &log.attachments).await?;
    let applied = core.exec(&app, Op::WriteLog(Box::new(log))).await?;
    let made = applied.events.iter().find_map(|e| match &e.kind {
        EventKind::MaintenanceLogged { log, .. } => Some(LogView::from(&**log)),
        _ => None,
    });
    made.map(|l| (StatusCode::CREATED, Json(l)))
        .ok_or_else(|| ApiError::Unavailable("log not applied".into()))
}

/// Whether `user` may read `log`, as `GET /v1/logs` decides: ops; the
/// worker its schedule is assigned to; the owner of its property.
pub fn may_read_log(core: &Core, user: &User, log: &Log) -> bool {
    match viewer(user) {
        ScheduleViewer::Ops => true,
        ScheduleViewer::Worker(w) => core
            .engine
            .schedule(&log.schedule_id)
            .is_some_and(|s| s.assigned_to.as_ref() == Some(&w)),
        ScheduleViewer::Owner(r) => core
            .engine
            .property(&log.property_id)
            .is_some_and(|p| p.owner_id == r),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
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
    let (from, to) = (params.time("from")?, params.time("to")?);
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
    let logs = logs_for(&app, core, &user, &params, params.limit()?).await?;
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

/// A cell a spreadsheet would read as a formula (OWASP "CSV injection":
/// beginning with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
/// leading `'`, so it shows as text (API.md v1.2).
fn cell(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

/// RFC 4180: a header row, CRLF line ends, fields quoted where needed;
/// every cell defused by [`cell`].
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
        w.write_record(
            [
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
            ]
            .map(cell)
            .iter()
            .map(|c| c.as_bytes()),
        )
        .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|_| ApiError::Unavailable("CSV could not be written".into()))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formula_cells_become_text() {
        for v in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(cell(v), format!("'{v}"));
        }
        for v in ["", "leak under sink", "1-2", "a=b"] {
            assert_eq!(cell(v), v);
        }
    }
}
