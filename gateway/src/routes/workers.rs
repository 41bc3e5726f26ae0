//! `/v1/workers`: a worker's location and availability over HTTP (the
//! fallback of the WebSocket messages), and the ops view of who is nearby.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use persistence::Role;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{may, Allowed, Locator};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::rfc3339;
use engine::Op;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Location {
    lat: f64,
    lng: f64,
}

pub async fn location(
    State(app): State<AppState>,
    Locator(user): Locator,
    Input(req): Input<Location>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Worker])?;
    let core = app.core()?;
    let handle = core.ensure_worker(&app, &user).await?;
    core.position(&app, &handle, req.lat, req.lng).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct Availability {
    available: bool,
}

pub async fn availability(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::WORKER }>,
    Input(req): Input<Availability>,
) -> Result<Json<Availability>, ApiError> {
    let core = app.core()?;
    let handle = core.ensure_worker(&app, &user).await?;
    let op = Op::Available {
        worker: handle.id().clone(),
        on: req.available,
    };
    core.exec(&app, op).await?;
    Ok(Json(req))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NearbyOut {
    workers: Vec<NearbyWorkerOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NearbyWorkerOut {
    id: String,
    lat: f64,
    lng: f64,
    distance_m: f64,
    available: bool,
    skills: Vec<String>,
    /// Extension: holds an open WebSocket.
    connected: bool,
    /// Extension: holds an offered or active job.
    busy: bool,
    /// Extension: when the position was reported.
    reported_at: String,
}

pub async fn nearby(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<NearbyOut>, ApiError> {
    let core = app.core()?;
    let lat = params.required("lat", -90.0..=90.0)?;
    let lng = params.required("lng", -180.0..=180.0)?;
    let radius = params
        .num("radius_m", 0.0..=engine::config::MAX_RADIUS_LIMIT_M)?
        .unwrap_or(app.cfg.dispatch.max_radius_m);
    let limit = params.limit_or(50)?;
    let found = core.engine.nearby(lat, lng, radius, limit)?;
    let workers = found
        .into_iter()
        .filter_map(|n| {
            let (lat, lng, at) = n.worker.position?;
            Some(NearbyWorkerOut {
                id: n.worker.id.as_str().to_string(),
                lat,
                lng,
                distance_m: n.distance_m,
                available: n.worker.available,
                skills: n
                    .worker
                    .skills
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
                connected: n.worker.connected,
                busy: n.worker.reserved,
                reported_at: rfc3339(at),
            })
        })
        .collect();
    Ok(Json(NearbyOut { workers }))
}
