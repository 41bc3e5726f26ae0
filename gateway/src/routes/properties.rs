//! `/v1/properties` (API.md v1.1): where work happens. A resident creates
//! and lists their own; ops create them for any resident and list all; a
//! worker may read one where it holds a job.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use engine::{Engine, EventKind, Op, Property};
use persistence::Role;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{may, Allowed, User};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::{rfc3339, PathIds};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewProperty {
    name: String,
    #[serde(default)]
    address: Option<String>,
    lat: f64,
    lng: f64,
    #[serde(default)]
    owner_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PropertyView {
    id: String,
    owner_id: String,
    name: String,
    address: Option<String>,
    lat: f64,
    lng: f64,
    created_at: String,
}

impl From<&Property> for PropertyView {
    fn from(p: &Property) -> PropertyView {
        PropertyView {
            id: p.id.clone(),
            owner_id: p.owner_id.as_str().to_owned(),
            name: p.name.clone(),
            address: p.address.clone(),
            lat: p.lat,
            lng: p.lng,
            created_at: rfc3339(p.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PropertyList {
    properties: Vec<PropertyView>,
}

/// The property `pid` if `user` may place work there (its owner, or ops);
/// any other id is the caller's mistake: 400 naming the field.
pub fn usable(engine: &Engine, user: &User, pid: &str) -> Result<Property, ApiError> {
    engine
        .property(pid)
        .filter(|p| user.role == Role::Ops || p.owner_id.as_str() == &*user.id)
        .ok_or_else(|| ApiError::invalid("property_id", "no such property of yours"))
}

pub async fn create(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::RESIDENT | may::OPS }>,
    Input(req): Input<NewProperty>,
) -> Result<(StatusCode, Json<PropertyView>), ApiError> {
    let core = app.core()?;
    let owner = match (user.role, req.owner_id) {
        (Role::Ops, Some(o)) => {
            if !core.is_account(&o, Role::Resident).await? {
                return Err(ApiError::invalid("owner_id", "must be a resident's id"));
            }
            o
        }
        (Role::Ops, None) => return Err(ApiError::invalid("owner_id", "is required for ops")),
        (_, Some(o)) if o != *user.id => {
            return Err(ApiError::invalid("owner_id", "must be your own id"))
        }
        _ => user.id.to_string(),
    };
    let property = Property {
        id: format!("prop_{}", uuid::Uuid::new_v4().simple()),
        owner_id: owner.as_str().into(),
        name: req.name,
        address: req.address,
        lat: req.lat,
        lng: req.lng,
        created_at: app.clock.now(),
    };
    // Checked first so a cluster never logs a command bound to fail.
    property.validate()?;
    let applied = core.exec(&app, Op::CreateProperty(property)).await?;
    let made = applied.events.iter().find_map(|e| match &e.kind {
        EventKind::PropertyCreated { property } => Some(PropertyView::from(property)),
        _ => None,
    });
    made.map(|p| (StatusCode::CREATED, Json(p)))
        .ok_or_else(|| ApiError::Unavailable("property not applied".into()))
}

pub async fn get(
    State(app): State<AppState>,
    user: User,
    PathIds(id): PathIds<String>,
) -> Result<Json<PropertyView>, ApiError> {
    let core = app.core()?;
    core.settled(&app).await?;
    let p = core
        .engine
        .property(&id)
        .filter(|p| match user.role {
            Role::Ops => true,
            Role::Resident => p.owner_id.as_str() == &*user.id,
            Role::Worker => core.engine.works_at(&user.id.as_ref().into(), &p.id),
        })
        .ok_or(ApiError::NotFound("property not found"))?;
    Ok(Json(PropertyView::from(&p)))
}

pub async fn list(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::RESIDENT | may::OPS }>,
    params: Params,
) -> Result<Json<PropertyList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit_or(50)?;
    core.settled(&app).await?;
    let owner = (user.role == Role::Resident).then(|| user.id.as_ref().into());
    let properties = core
        .engine
        .properties(owner.as_ref(), limit)
        .iter()
        .map(PropertyView::from)
        .collect();
    Ok(Json(PropertyList { properties }))
}
