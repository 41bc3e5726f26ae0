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
use engine::{EventKind, Op};
use persistence::Role;
use serde::{Deserialize, Serialize};

use crate::app::{AppState, Core};
use crate::auth::{may, Allowed, User};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::{known_id, rfc3339, PathIds};

pub mod ledger;
pub mod reorder;

pub use ledger::{balances, create_movement, list_movements, NewMovement};
pub use reorder::{
    analytics, list_tasks, put_rule, reorder_check, run_check, task_step, Rule, StepIn,
};

#[derive(Serialize, utoipa::ToSchema)]
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct MovementView {
    id: String,
    part_id: String,
    from: Option<String>,
    to: Option<String>,
    qty: i64,
    #[schema(value_type = crate::openapi::MovementKind)]
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    part_id: String,
    location: String,
    on_hand: i64,
    reserved: i64,
    available: i64,
}

pub(super) fn balance(part: &str, loc: &str, b: &Bal) -> BalanceView {
    BalanceView {
        part_id: part.to_owned(),
        location: loc.to_owned(),
        on_hand: b.on_hand,
        reserved: b.reserved,
        available: b.available(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskView {
    id: String,
    part_id: String,
    location: String,
    qty: i64,
    #[schema(value_type = crate::openapi::TaskStatus)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

fn applied_part(events: &[engine::Event]) -> Option<PartView> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::PartCreated { part } | EventKind::PartUpdated { part } => {
            Some(PartView::from(part))
        }
        _ => None,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
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
    Allowed(_user): Allowed<{ may::OPS }>,
    Input(req): Input<NewPart>,
) -> Result<(StatusCode, Json<PartView>), ApiError> {
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartList {
    parts: Vec<PartView>,
}

pub async fn list_parts(
    State(app): State<AppState>,
    _user: User,
    params: Params,
) -> Result<Json<PartList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit()?;
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

/// A field not listed here (`id`, `sku`, `created_at` …) is 400 naming
/// it: it cannot be changed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
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
    Allowed(_user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
    Input(req): Input<PartPatchIn>,
) -> Result<Json<PartView>, ApiError> {
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
    Allowed(_user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<StatusCode, ApiError> {
    let core = app.core()?;
    let p = part_of(core, &id)?;
    core.exec(&app, Op::DeletePart { id: p.id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
