//! Parts and stock (API.md v1.1): the catalogue (`/v1/parts`), the
//! movement ledger and balances (`/v1/stock…`), reorder rules and tasks
//! (`/v1/ops/reorder…`) and parts analytics. Ops may do anything; a
//! worker reads the catalogue, sees their van and the depots, and may only
//! consume from their own van or return from it to a depot.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use engine::stock::{
    check_location, van, Bal, MoveKind, Movement, Part, PartLine, PartPatch, ReorderStep,
    ReorderTask, StockCheck, TaskStatus,
};
use engine::{EventKind, Millis, Op};
use persistence::Role;
use serde::{Deserialize, Serialize};

use crate::app::{AppState, Core};
use crate::auth::User;
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::{known_id, rfc3339, PathIds};

/// Most movements the analytics read per part.
const ANALYTICS_PER_PART: usize = 20_000;

#[derive(Serialize)]
pub struct PartView {
    id: String,
    sku: String,
    name: String,
    fits: Vec<String>,
    unit_cost_cents: i64,
    supplier: String,
    reorder_point: i64,
    reorder_qty: i64,
    created_at: String,
}

impl From<&Part> for PartView {
    fn from(p: &Part) -> PartView {
        PartView {
            id: p.id.clone(),
            sku: p.sku.clone(),
            name: p.name.clone(),
            fits: p.fits.clone(),
            unit_cost_cents: p.unit_cost_cents,
            supplier: p.supplier.clone(),
            reorder_point: p.reorder_point,
            reorder_qty: p.reorder_qty,
            created_at: rfc3339(p.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct MovementView {
    id: String,
    part_id: String,
    from: Option<String>,
    to: Option<String>,
    qty: i64,
    kind: &'static str,
    job_id: Option<String>,
    by: String,
    at: String,
    note: String,
}

impl From<&Movement> for MovementView {
    fn from(m: &Movement) -> MovementView {
        MovementView {
            id: m.id.clone(),
            part_id: m.part_id.clone(),
            from: m.from.clone(),
            to: m.to.clone(),
            qty: m.qty,
            kind: m.kind.as_str(),
            job_id: m.job_id.as_ref().map(|j| j.as_str().to_owned()),
            by: m.by.clone(),
            at: rfc3339(m.at),
            note: m.note.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct BalanceView {
    part_id: String,
    location: String,
    on_hand: i64,
    reserved: i64,
    available: i64,
}

fn balance(part: &str, loc: &str, b: &Bal) -> BalanceView {
    BalanceView {
        part_id: part.to_owned(),
        location: loc.to_owned(),
        on_hand: b.on_hand,
        reserved: b.reserved,
        available: b.available(),
    }
}

#[derive(Serialize)]
pub struct TaskView {
    id: String,
    part_id: String,
    location: String,
    qty: i64,
    status: &'static str,
    created_at: String,
    updated_at: String,
}

impl From<&ReorderTask> for TaskView {
    fn from(t: &ReorderTask) -> TaskView {
        TaskView {
            id: t.id.clone(),
            part_id: t.part_id.clone(),
            location: t.location.clone(),
            qty: t.qty,
            status: t.status.as_str(),
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

/// A line of `POST /v1/jobs` `parts`.
#[derive(Debug, Deserialize)]
pub struct LineIn {
    part_id: String,
    qty: i64,
}

impl LineIn {
    pub fn line(&self) -> Result<PartLine, ApiError> {
        if self.part_id.is_empty() || self.part_id.len() > 64 {
            return Err(ApiError::invalid("parts.part_id", "no such part"));
        }
        Ok(PartLine {
            part_id: self.part_id.clone(),
            qty: self.qty,
        })
    }
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    Ok(params.num("limit", 1usize..=500)?.unwrap_or(50))
}

fn instant(field: &str, raw: &str) -> Result<Millis, ApiError> {
    raw.parse::<jiff::Timestamp>()
        .map(|t| Millis(t.as_millisecond()))
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time"))
}

fn opt_instant(params: &Params, field: &str) -> Result<Option<Millis>, ApiError> {
    params.0.get(field).map(|s| instant(field, s)).transpose()
}

fn applied_part(events: &[engine::Event]) -> Option<PartView> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::PartCreated { part } | EventKind::PartUpdated { part } => {
            Some(PartView::from(part))
        }
        _ => None,
    })
}

#[derive(Deserialize)]
pub struct NewPart {
    sku: String,
    name: String,
    #[serde(default)]
    fits: Option<Vec<String>>,
    unit_cost_cents: i64,
    #[serde(default)]
    supplier: Option<String>,
    reorder_point: i64,
    reorder_qty: i64,
}

pub async fn create_part(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<NewPart>,
) -> Result<(StatusCode, Json<PartView>), ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let part = Part {
        id: format!("part_{}", uuid::Uuid::new_v4().simple()),
        sku: req.sku.trim().to_owned(),
        name: req.name,
        fits: req.fits.unwrap_or_default(),
        unit_cost_cents: req.unit_cost_cents,
        supplier: req.supplier.unwrap_or_default(),
        reorder_point: req.reorder_point,
        reorder_qty: req.reorder_qty,
        created_at: app.clock.now(),
    };
    part.validate()?;
    if core.engine.sku_taken(&part.sku) {
        return Err(ApiError::SkuTaken);
    }
    let applied = core.exec(&app, Op::CreatePart(part)).await?;
    applied_part(&applied.events)
        .map(|p| (StatusCode::CREATED, Json(p)))
        .ok_or_else(|| ApiError::Unavailable("part not applied".into()))
}

#[derive(Serialize)]
pub struct PartList {
    parts: Vec<PartView>,
}

pub async fn list_parts(
    State(app): State<AppState>,
    _user: User,
    params: Params,
) -> Result<Json<PartList>, ApiError> {
    let core = app.core()?;
    let limit = limit(&params)?;
    core.settled(&app).await?;
    let parts = core
        .engine
        .parts(
            params.0.get("q").map(String::as_str),
            params.0.get("fits").map(String::as_str),
            limit,
        )
        .iter()
        .map(PartView::from)
        .collect();
    Ok(Json(PartList { parts }))
}

fn part_of(core: &Core, id: &str) -> Result<Part, ApiError> {
    let id = known_id(id, "part not found")?;
    core.engine
        .part(id)
        .ok_or(ApiError::NotFound("part not found"))
}

pub async fn get_part(
    State(app): State<AppState>,
    _user: User,
    PathIds(id): PathIds<String>,
) -> Result<Json<PartView>, ApiError> {
    let core = app.core()?;
    core.settled(&app).await?;
    Ok(Json(PartView::from(&part_of(core, &id)?)))
}

#[derive(Deserialize)]
pub struct PartPatchIn {
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fits: Option<Vec<String>>,
    #[serde(default)]
    unit_cost_cents: Option<i64>,
    #[serde(default)]
    supplier: Option<String>,
    #[serde(default)]
    reorder_point: Option<i64>,
    #[serde(default)]
    reorder_qty: Option<i64>,
}

pub async fn update_part(
    State(app): State<AppState>,
    user: User,
    PathIds(id): PathIds<String>,
    Input(req): Input<PartPatchIn>,
) -> Result<Json<PartView>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let old = part_of(core, &id)?;
    let patch = PartPatch {
        sku: req.sku.map(|s| s.trim().to_owned()),
        name: req.name,
        fits: req.fits,
        unit_cost_cents: req.unit_cost_cents,
        supplier: req.supplier,
        reorder_point: req.reorder_point,
        reorder_qty: req.reorder_qty,
    };
    let op = Op::UpdatePart {
        id: old.id,
        patch: Box::new(patch),
    };
    let applied = core.exec(&app, op).await?;
    applied_part(&applied.events)
        .map(Json)
        .ok_or_else(|| ApiError::Unavailable("part not applied".into()))
}

pub async fn delete_part(
    State(app): State<AppState>,
    user: User,
    PathIds(id): PathIds<String>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let p = part_of(core, &id)?;
    core.exec(&app, Op::DeletePart { id: p.id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct NewMovement {
    part_id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    qty: i64,
    kind: String,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub async fn create_movement(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<NewMovement>,
) -> Result<(StatusCode, Json<MovementView>), ApiError> {
    user.require(&[Role::Ops, Role::Worker])?;
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

#[derive(Serialize)]
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
    user: User,
    params: Params,
) -> Result<Json<MovementList>, ApiError> {
    user.require(&[Role::Ops, Role::Worker])?;
    let core = app.core()?;
    let limit = limit(&params)?;
    let (from, to) = (opt_instant(&params, "from")?, opt_instant(&params, "to")?);
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
    let keys = match (&location, &part) {
        (Some(l), _) => Some(vec![format!("l:{l}")]),
        (None, Some(p)) => Some(vec![format!("p:{p}")]),
        (None, None) => None,
    };
    core.settled(&app).await?;
    let keep = |m: &Movement| {
        part.as_ref().is_none_or(|p| &m.part_id == p)
            && location
                .as_ref()
                .is_none_or(|l| m.from.as_ref() == Some(l) || m.to.as_ref() == Some(l))
    };
    let found: Vec<Movement> = core
        .backend
        .history(keys.as_deref(), from, to, limit, keep)
        .await?;
    Ok(Json(MovementList {
        movements: found.iter().map(MovementView::from).collect(),
    }))
}

#[derive(Serialize)]
pub struct BalanceList {
    balances: Vec<BalanceView>,
}

pub async fn balances(
    State(app): State<AppState>,
    user: User,
    params: Params,
) -> Result<Json<BalanceList>, ApiError> {
    user.require(&[Role::Ops, Role::Worker])?;
    let core = app.core()?;
    let limit = params.num("limit", 1usize..=10_000)?.unwrap_or(500);
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

#[derive(Serialize, Deserialize)]
pub struct Rule {
    part_id: String,
    location: String,
    reorder_point: i64,
    reorder_qty: i64,
}

pub async fn put_rule(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<Rule>,
) -> Result<Json<Rule>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    check_location("location", &req.location)?;
    if core.engine.part(&req.part_id).is_none() {
        return Err(ApiError::invalid("part_id", "no such part"));
    }
    let op = Op::SetStockRule {
        part_id: req.part_id.clone(),
        location: req.location.clone(),
        reorder_point: req.reorder_point,
        reorder_qty: req.reorder_qty,
    };
    core.exec(&app, op).await?;
    Ok(Json(req))
}

/// `POST /v1/ops/reorder/check`.
pub async fn reorder_check(
    State(app): State<AppState>,
    user: User,
) -> Result<Json<StockCheck>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    Ok(Json(run_check(&app, core).await?))
}

/// Runs the reorder check through the backend.
pub async fn run_check(app: &AppState, core: &Core) -> Result<StockCheck, ApiError> {
    let applied = core.exec(app, Op::ReorderCheck).await?;
    applied
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StockChecked { report } => Some(*report),
            _ => None,
        })
        .ok_or_else(|| ApiError::Unavailable("check not applied".into()))
}

#[derive(Serialize)]
pub struct TaskList {
    tasks: Vec<TaskView>,
}

pub async fn list_tasks(
    State(app): State<AppState>,
    user: User,
    params: Params,
) -> Result<Json<TaskList>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let limit = limit(&params)?;
    let status = params
        .0
        .get("status")
        .map(|s| {
            TaskStatus::parse(s).ok_or_else(|| {
                ApiError::invalid("status", "must be open, ordered, received or cancelled")
            })
        })
        .transpose()?;
    core.settled(&app).await?;
    let tasks = core
        .engine
        .reorder_tasks(status, limit)
        .iter()
        .map(TaskView::from)
        .collect();
    Ok(Json(TaskList { tasks }))
}

/// `received` may name the depot that fills a van's task.
#[derive(Deserialize, Default)]
pub struct StepIn {
    #[serde(default)]
    from: Option<String>,
}

pub async fn task_step(
    State(app): State<AppState>,
    user: User,
    PathIds((id, step)): PathIds<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<TaskView>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let step = ReorderStep::parse(&step).ok_or(ApiError::NotFound("no such route"))?;
    let id = known_id(&id, "task not found")?.to_owned();
    let from = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::wire::parse::<StepIn>(&body, crate::wire::Format::Json)?.from
    };
    if let Some(f) = &from {
        check_location("from", f)?;
        if step != ReorderStep::Received {
            return Err(ApiError::invalid("from", "only with received"));
        }
    }
    let op = Op::ReorderStep {
        id: id.clone(),
        step,
        by: user.id.to_string(),
        from,
    };
    core.exec(&app, op).await?;
    core.engine
        .reorder_task(&id)
        .map(|t| Json(TaskView::from(&t)))
        .ok_or(ApiError::NotFound("task not found"))
}

#[derive(Serialize)]
pub struct PartStats {
    part_id: String,
    sku: String,
    consumed: i64,
    consumed_cost_cents: i64,
    stockouts: u64,
    on_hand: i64,
    value_on_hand_cents: i64,
    days_of_cover: Option<f64>,
}

#[derive(Serialize)]
pub struct PartAnalytics {
    parts: Vec<PartStats>,
}

/// `GET /v1/ops/analytics/parts?from=&to=` (default: the last 30 days):
/// consumption and its cost, stockouts (movements that left a location
/// with nothing available), stock and its value now, and days of cover at
/// the period's consumption rate.
pub async fn analytics(
    State(app): State<AppState>,
    user: User,
    params: Params,
) -> Result<Json<PartAnalytics>, ApiError> {
    user.require(&[Role::Ops])?;
    let core = app.core()?;
    let now = app.clock.now();
    let to = opt_instant(&params, "to")?.unwrap_or(now);
    let from = opt_instant(&params, "from")?.unwrap_or(to.minus_secs(30 * 86_400));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before to"));
    }
    let limit = params.num("limit", 1usize..=500)?.unwrap_or(500);
    core.settled(&app).await?;
    let parts = core.engine.parts(None, None, limit);
    let days = (to.0 - from.0) as f64 / 86_400_000.0;
    let mut out = Vec::new();
    for p in parts {
        let key = [format!("p:{}", p.id)];
        let moves: Vec<Movement> = core
            .backend
            .history(
                Some(&key),
                Some(from),
                Some(to),
                ANALYTICS_PER_PART,
                |m: &Movement| m.kind == MoveKind::Consume || m.from_available_after == Some(0),
            )
            .await?;
        let consumed: i64 = moves
            .iter()
            .filter(|m| m.kind == MoveKind::Consume)
            .map(|m| m.qty)
            .sum();
        let stockouts = moves
            .iter()
            .filter(|m| m.from_available_after == Some(0))
            .count() as u64;
        let on_hand: i64 = core
            .engine
            .part_balances(&p.id)
            .iter()
            .map(|(_, b)| b.on_hand)
            .sum();
        let rate = consumed as f64 / days;
        out.push(PartStats {
            part_id: p.id.clone(),
            sku: p.sku.clone(),
            consumed,
            consumed_cost_cents: consumed.saturating_mul(p.unit_cost_cents),
            stockouts,
            on_hand,
            value_on_hand_cents: on_hand.saturating_mul(p.unit_cost_cents),
            days_of_cover: (rate > 0.0).then(|| (on_hand as f64 / rate * 10.0).round() / 10.0),
        });
    }
    Ok(Json(PartAnalytics { parts: out }))
}
