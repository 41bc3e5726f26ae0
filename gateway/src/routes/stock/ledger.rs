//! The ledger over HTTP: movements (who may post which) and balances (a
//! worker sees their van and the depots).

use super::*;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewMovement {
    part_id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    qty: i64,
    #[schema(value_type = crate::openapi::MovementKind)]
    kind: String,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub async fn create_movement(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS | may::WORKER }>,
    Input(req): Input<NewMovement>,
) -> Result<(StatusCode, Json<MovementView>), ApiError> {
    let core = app.core()?;
    let kind = MoveKind::parse(&req.kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            "must be receive, transfer, consume, return or adjust",
        )
    })?;
    if user.role == Role::Worker {
        let own = van(&user.id.as_ref().into());
        let allowed = match kind {
            MoveKind::Consume => req.from.as_deref() == Some(own.as_str()),
            MoveKind::Return => {
                req.from.as_deref() == Some(own.as_str())
                    && req.to.as_deref().is_some_and(|t| t.starts_with("depot:"))
            }
            _ => false,
        };
        if !allowed {
            return Err(ApiError::Forbidden(
                "a worker may only consume from or return from their own van",
            ));
        }
    }
    let job_id = match &req.job_id {
        Some(j) if j.is_empty() || j.len() > 128 => {
            return Err(ApiError::invalid("job_id", "not a job id"))
        }
        Some(j) => Some(engine::JobId::from(j.as_str())),
        None => None,
    };
    if let (MoveKind::Consume, Some(id)) = (kind, &job_id) {
        consumed_for(&app, core, id, req.from.as_deref()).await?;
    }
    let m = Movement {
        id: format!("mv_{}", uuid::Uuid::new_v4().simple()),
        part_id: req.part_id,
        from: req.from,
        to: req.to,
        qty: req.qty,
        kind,
        job_id,
        by: user.id.to_string(),
        at: app.clock.now(),
        note: req.note.unwrap_or_default(),
        from_available_after: None,
    };
    m.validate()?;
    if core.engine.part(&m.part_id).is_none() {
        return Err(ApiError::invalid("part_id", "no such part"));
    }
    let applied = core.exec(&app, Op::MoveStock(Box::new(m))).await?;
    applied
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StockMoved { movement } => Some(MovementView::from(&**movement)),
            _ => None,
        })
        .map(|v| (StatusCode::CREATED, Json(v)))
        .ok_or_else(|| ApiError::Unavailable("movement not applied".into()))
}

/// A `consume` naming a job (API.md v1.2): the job exists and, from a
/// van, is that van's worker's job; else 400 naming `job_id`.
async fn consumed_for(
    app: &AppState,
    core: &Core,
    id: &engine::JobId,
    from: Option<&str>,
) -> Result<(), ApiError> {
    let bad = || ApiError::invalid("job_id", "must name an existing job of the van's worker");
    let job = core
        .job_for(app, id, &engine::Viewer::Ops)
        .await?
        .ok_or_else(bad)?;
    match from.and_then(|f| f.strip_prefix("van:")) {
        Some(w) if job.worker_id.as_ref().is_none_or(|j| j.as_str() != w) => Err(bad()),
        _ => Ok(()),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MovementList {
    movements: Vec<MovementView>,
}

/// Whether `user` may see location `loc`: ops all; a worker their van and
/// the depots.
fn sees(user: &User, loc: &str) -> bool {
    match user.role {
        Role::Ops => true,
        Role::Worker => loc.starts_with("depot:") || loc == van(&user.id.as_ref().into()),
        Role::Resident => false,
    }
}

pub async fn list_movements(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS | may::WORKER }>,
    params: Params,
) -> Result<Json<MovementList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit()?;
    let (from, to) = (params.time("from")?, params.time("to")?);
    let part = params.0.get("part_id").cloned();
    let location = match (params.0.get("location"), user.role) {
        (Some(l), _) => {
            check_location("location", l)?;
            if !sees(&user, l) {
                return Err(ApiError::NotFound("location not found"));
            }
            Some(l.clone())
        }
        (None, Role::Worker) => Some(van(&user.id.as_ref().into())),
        (None, _) => None,
    };
    // A worker sees only movements into or out of their own van (API.md
    // v1.2), whatever location they name (a depot narrows it further).
    let own = (user.role == Role::Worker).then(|| van(&user.id.as_ref().into()));
    let keys = match (&own, &location, &part) {
        (Some(v), _, _) | (None, Some(v), _) => Some(vec![format!("l:{v}")]),
        (None, None, Some(p)) => Some(vec![format!("p:{p}")]),
        (None, None, None) => None,
    };
    core.settled(&app).await?;
    let touches = |m: &Movement, l: &String| m.from.as_ref() == Some(l) || m.to.as_ref() == Some(l);
    let keep = |m: &Movement| {
        part.as_ref().is_none_or(|p| &m.part_id == p)
            && location.as_ref().is_none_or(|l| touches(m, l))
            && own.as_ref().is_none_or(|v| touches(m, v))
    };
    let found: Vec<Movement> = core
        .backend
        .history(keys.as_deref(), from, to, limit, keep)
        .await?;
    Ok(Json(MovementList {
        movements: found.iter().map(MovementView::from).collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BalanceList {
    balances: Vec<BalanceView>,
}

pub async fn balances(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS | may::WORKER }>,
    params: Params,
) -> Result<Json<BalanceList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit_or(500)?;
    let low = match params.0.get("low").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("low", "must be true or false")),
    };
    let location = params.0.get("location").cloned();
    if let Some(l) = &location {
        check_location("location", l)?;
    }
    let part = params.0.get("part_id").cloned();
    core.settled(&app).await?;
    let found = core.engine.balances(
        |p, loc, b, (rp, _)| {
            sees(&user, loc)
                && location.as_ref().is_none_or(|l| l == loc)
                && part.as_ref().is_none_or(|x| x == &p.id)
                && (!low || b.available() <= rp)
        },
        limit,
    );
    Ok(Json(BalanceList {
        balances: found
            .iter()
            .map(|(p, loc, b)| balance(&p.id, loc, b))
            .collect(),
    }))
}
