//! Reorder rules, the check and its tasks, and parts analytics.

use super::*;

/// Most movements the analytics read per part.
const ANALYTICS_PER_PART: usize = 20_000;

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    part_id: String,
    location: String,
    reorder_point: i64,
    reorder_qty: i64,
}

pub async fn put_rule(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    Input(req): Input<Rule>,
) -> Result<Json<Rule>, ApiError> {
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
    Allowed(_user): Allowed<{ may::OPS }>,
) -> Result<Json<StockCheck>, ApiError> {
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskList {
    tasks: Vec<TaskView>,
}

pub async fn list_tasks(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<TaskList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit()?;
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
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct StepIn {
    #[serde(default)]
    from: Option<String>,
}

pub async fn task_step(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::OPS }>,
    PathIds((id, step)): PathIds<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<TaskView>, ApiError> {
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

#[derive(Serialize, utoipa::ToSchema)]
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartAnalytics {
    parts: Vec<PartStats>,
}

/// `GET /v1/ops/analytics/parts?from=&to=` (default: the last 30 days):
/// consumption and its cost, stockouts (movements that left a location
/// with nothing available), stock and its value now, and days of cover at
/// the period's consumption rate.
pub async fn analytics(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<PartAnalytics>, ApiError> {
    let core = app.core()?;
    let now = app.clock.now();
    let to = params.time("to")?.unwrap_or(now);
    let from = params.time("from")?.unwrap_or(to.minus_secs(30 * 86_400));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before to"));
    }
    let limit = params.limit_or(500)?;
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
