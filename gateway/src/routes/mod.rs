//! The HTTP surface: one router with every route of API.md, the health
//! and metrics endpoints, and the fallbacks that keep even unknown paths in
//! the contract's error shape.

pub mod attachments;
pub mod auth;
pub mod frontends;
pub mod jobs;
pub mod maintenance;
pub mod me;
pub mod notify;
pub mod ops;
pub mod payments;
pub mod properties;
pub mod stock;
pub mod triage;
pub mod workers;

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/me", get(me::get).patch(me::patch))
        .route("/v1/jobs", post(jobs::create).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/rating", post(payments::rate))
        .route("/v1/jobs/{id}/payments", get(payments::list))
        .route("/v1/payments", post(payments::record))
        .route("/v1/attachments", post(attachments::upload))
        .route("/v1/attachments/{id}", get(attachments::download))
        .route("/v1/ops/users/{id}/usage", get(attachments::usage))
        .route("/v1/ops/analytics/workers", get(payments::worker_analytics))
        .route("/v1/jobs/{id}/{step}", post(jobs::step))
        .route("/v1/workers/me/location", put(workers::location))
        .route("/v1/workers/me/availability", put(workers::availability))
        .route("/v1/workers/nearby", get(workers::nearby))
        .route(
            "/v1/properties",
            post(properties::create).get(properties::list),
        )
        .route("/v1/properties/{id}", get(properties::get))
        .route(
            "/v1/schedules",
            post(maintenance::create).get(maintenance::list),
        )
        .route("/v1/schedules.ics", get(maintenance::calendar))
        .route(
            "/v1/schedules/{id}",
            get(maintenance::get)
                .patch(maintenance::update)
                .delete(maintenance::delete),
        )
        .route(
            "/v1/logs",
            post(maintenance::create_log).get(maintenance::list_logs),
        )
        .route("/v1/ops/maintenance/check", post(maintenance::check))
        .route("/v1/parts", post(stock::create_part).get(stock::list_parts))
        .route(
            "/v1/parts/{id}",
            get(stock::get_part)
                .patch(stock::update_part)
                .delete(stock::delete_part),
        )
        .route(
            "/v1/stock/movements",
            post(stock::create_movement).get(stock::list_movements),
        )
        .route("/v1/stock", get(stock::balances))
        .route("/v1/stock/rules", put(stock::put_rule))
        .route("/v1/ops/reorder/check", post(stock::reorder_check))
        .route("/v1/ops/reorder/tasks", get(stock::list_tasks))
        .route("/v1/ops/reorder/tasks/{id}/{step}", post(stock::task_step))
        .route("/v1/ops/analytics/parts", get(stock::analytics))
        .route("/v1/triage", post(triage::triage))
        .route("/v1/triage/skills", get(triage::skills))
        .route("/v1/ops/triage/examples", post(triage::add_example))
        .route("/v1/ops/unmatched", get(ops::unmatched))
        .route("/v1/ops/unmatched/{id}/retry", post(ops::retry))
        .route(
            "/v1/me/notifications",
            put(notify::put_prefs).get(notify::get_prefs),
        )
        .route(
            "/v1/ops/webhooks",
            post(notify::create_webhook).get(notify::list_webhooks),
        )
        .route("/v1/ops/webhooks/{id}", delete(notify::delete_webhook))
        .route("/v1/ops/deliveries", get(notify::deliveries))
        .route("/v1/ops/deliveries/{id}", get(notify::delivery))
        .route(
            "/v1/ops/deliveries/{id}/retry",
            post(notify::retry_delivery),
        )
        .route("/v1/ws", get(crate::ws::upgrade))
        .route("/ops", get(frontends::console_page))
        .route("/ops/{*path}", get(frontends::console_file))
        .route("/app", get(frontends::app_page))
        .route("/app/", get(frontends::app_page))
        .route("/app/{*path}", get(frontends::app_file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .with_state(state)
}

/// Whether the request's `If-None-Match` names `etag` (or is `*`): then
/// the answer is 304 without a body.
pub(crate) fn not_modified(
    headers: &axum::http::HeaderMap,
    etag: &axum::http::HeaderValue,
) -> bool {
    let Ok(tag) = etag.to_str() else { return false };
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

/// No request may stall shutdown or hold a task forever.
async fn deadline(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = Duration::from_secs(app.cfg.server.request_timeout_s);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Unavailable("request timed out".into()).into_response(),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ApiError::Unavailable("not ready: recovering or shutting down".into()).into_response()
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    if let Some(core) = app.core_any() {
        crate::metrics::engine_gauges(&core.engine.stats());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route")
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": "method_not_allowed", "message": "method not allowed on this route"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
