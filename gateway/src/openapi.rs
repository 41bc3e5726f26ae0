//! `GET /openapi.json`: OpenAPI 3.1 of every HTTP route (API.md "Ops
//! console and machine-readable contract"). The bodies' schemas are
//! generated from the very types the handlers read and write (`ToSchema`
//! derived on them); the table below says which route takes and answers
//! which, with its query parameters and the error statuses it can give.
//! `tests/openapi.rs` checks that the table and the router name the same
//! routes, and `scripts/test.sh` runs schemathesis against a live server.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponsesBuilder, Schema,
};
use utoipa::ToSchema;

use crate::routes::{
    attachments, auth, jobs, maintenance, me, notify, payments, properties, stock, triage, workers,
};
use crate::wire::JobView;

/// The contract's error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case: `invalid_input`, `unauthorized`, `not_found` …
    code: String,
    /// Human text; for `invalid_input` it names the field.
    message: String,
    /// With `triage_uncertain`: the skills triage weighed.
    #[schema(nullable = false)]
    alternatives: Option<Vec<crate::wire::SkillConfidence>>,
}

/// `POST /v1/ops/maintenance/check`.
#[derive(Serialize, ToSchema)]
pub struct CheckReport {
    checked: u64,
    due: u64,
    overdue: u64,
    alerts: u64,
}

/// `POST /v1/ops/reorder/check`.
#[derive(Serialize, ToSchema)]
pub struct StockCheck {
    checked: u64,
    created: u64,
}

/// A job's `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Searching,
    Offered,
    Accepted,
    Arrived,
    Completed,
    Cancelled,
    Unmatched,
}

/// A job's or triage's `urgency`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Emergency,
    High,
    Normal,
    Low,
}

/// An account's `role`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Resident,
    Worker,
    Ops,
}

/// A log's `issues_found`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuesFound {
    None,
    Minor,
    Major,
}

/// A schedule's `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Upcoming,
    Due,
    Overdue,
    Paused,
}

/// A payment's `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

/// A stock movement's `kind`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    Receive,
    Transfer,
    Consume,
    Return,
    Adjust,
}

/// A reorder task's `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Ordered,
    Received,
    Cancelled,
}

/// A schedule's `anchor`: the next due date counted from the due date or
/// from the completion.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    Due,
    Completion,
}

/// A schedule's `every.unit`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepUnit {
    Day,
    Week,
    Month,
    Year,
}

/// A delivery's `channel`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Email,
    Sms,
}

/// A delivery's `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    status: String,
}

/// A request or response body.
enum Body {
    None,
    Json(fn(&mut Schemas) -> RefOr<Schema>),
    /// Raw bytes of one of these media types.
    Raw(&'static [&'static str]),
}

type Schemas = Vec<(String, RefOr<Schema>)>;

fn json<T: ToSchema>(s: &mut Schemas) -> RefOr<Schema> {
    s.push((T::name().into_owned(), T::schema()));
    T::schemas(s);
    Ref::from_schema_name(T::name()).into()
}

/// One route: method, path, who, body in, success status and body out,
/// query parameters (name, required), error statuses besides 401/429/503.
struct Route {
    method: HttpMethod,
    path: &'static str,
    summary: &'static str,
    auth: bool,
    body: Body,
    ok: u16,
    out: Body,
    query: &'static [(&'static str, bool)],
    errors: &'static [u16],
}

const E_READ: &[u16] = &[400, 404];
const E_WRITE: &[u16] = &[400, 403, 404, 409, 413, 415];

#[rustfmt::skip]
fn routes() -> Vec<Route> {
    use Body::{Json as J, None as N, Raw};
    use HttpMethod::{Delete, Get, Patch, Post, Put};
    let r = |method, path, summary, body, ok, out, query, errors| Route {
        method,
        path,
        summary,
        auth: true,
        body,
        ok,
        out,
        query,
        errors,
    };
    vec![
        Route { auth: false, ..r(Post, "/v1/auth/register", "Register a resident or worker (ops: with an ops token)", J(json::<auth::RegisterReq>), 201, J(json::<auth::Registered>), &[], &[400, 401, 403, 409, 413, 415, 429]) },
        Route { auth: false, ..r(Post, "/v1/auth/login", "Log in", J(json::<auth::LoginReq>), 200, J(json::<auth::LoggedIn>), &[], &[400, 401, 413, 415, 429]) },
        r(Get, "/v1/me", "Who the token is: profile (v1.2)", N, 200, J(json::<me::Me>), &[], &[]),
        r(Patch, "/v1/me", "Change one's name, or a worker's skills (v1.2)", J(json::<me::MePatch>), 200, J(json::<me::Me>), &[], &[400, 404, 413, 415]),
        r(Post, "/v1/jobs", "Create a job (Idempotency-Key honoured)", J(json::<jobs::CreateJob>), 201, J(json::<JobView>), &[], &[400, 403, 404, 409, 413, 415, 422]),
        r(Get, "/v1/jobs", "Jobs the caller may list, newest first", N, 200, J(json::<jobs::JobList>), &[("status", false), ("limit", false)], E_READ),
        r(Get, "/v1/jobs/{id}", "One job", N, 200, J(json::<JobView>), &[], E_READ),
        r(Post, "/v1/jobs/{id}/cancel", "Cancel a job", J(json::<jobs::CancelReq>), 200, J(json::<JobView>), &[], E_WRITE),
        r(Post, "/v1/jobs/{id}/rating", "Rate a completed job (its resident, once)", J(json::<payments::RatingIn>), 200, J(json::<JobView>), &[], E_WRITE),
        r(Get, "/v1/jobs/{id}/payments", "A job's payments", N, 200, J(json::<payments::PaymentList>), &[("limit", false)], E_READ),
        r(Post, "/v1/jobs/{id}/{step}", "A worker's step: accept, decline, arrive or complete", N, 200, J(json::<JobView>), &[], E_WRITE),
        r(Post, "/v1/payments", "Record a payment (ops, or the provider signing per Standard Webhooks)", J(json::<payments::PaymentIn>), 201, J(json::<payments::PaymentView>), &[], E_WRITE),
        r(Post, "/v1/attachments", "Upload a photo or invoice (raw bytes)", Raw(&["image/jpeg", "image/png", "image/webp", "application/pdf"]), 201, J(json::<attachments::AttachmentView>), &[], &[400, 413, 415]),
        r(Get, "/v1/attachments/{id}", "An attachment's bytes", N, 200, Raw(&["image/jpeg", "image/png", "image/webp", "application/pdf"]), &[], E_READ),
        r(Get, "/v1/ops/analytics/workers", "Per-worker analytics over a period", N, 200, J(json::<payments::WorkerAnalytics>), &[("from", false), ("to", false), ("limit", false)], &[400, 403]),
        r(Put, "/v1/workers/me/location", "A worker's position", J(json::<workers::Location>), 204, N, &[], &[400, 403, 413, 415]),
        r(Put, "/v1/workers/me/availability", "A worker's availability", J(json::<workers::Availability>), 200, J(json::<workers::Availability>), &[], &[400, 403, 413, 415]),
        r(Get, "/v1/workers/nearby", "Workers near a point (ops)", N, 200, J(json::<workers::NearbyOut>), &[("lat", true), ("lng", true), ("radius_m", false), ("limit", false)], &[400, 403]),
        r(Post, "/v1/properties", "Create a property", J(json::<properties::NewProperty>), 201, J(json::<properties::PropertyView>), &[], E_WRITE),
        r(Get, "/v1/properties", "Properties the caller may list", N, 200, J(json::<properties::PropertyList>), &[("limit", false)], E_READ),
        r(Get, "/v1/properties/{id}", "One property", N, 200, J(json::<properties::PropertyView>), &[], E_READ),
        r(Post, "/v1/schedules", "Create a maintenance schedule (ops)", J(json::<maintenance::NewSchedule>), 201, J(json::<maintenance::ScheduleView>), &[], E_WRITE),
        r(Get, "/v1/schedules", "Schedules the caller may list, by due date", N, 200, J(json::<maintenance::ScheduleList>), &[("property_id", false), ("status", false), ("due_before", false), ("limit", false)], E_READ),
        r(Get, "/v1/schedules.ics", "The schedules as an RFC 5545 calendar (accepts ?token=)", N, 200, Raw(&["text/calendar"]), &[("token", false)], E_READ),
        r(Get, "/v1/schedules/{id}", "One schedule", N, 200, J(json::<maintenance::ScheduleView>), &[], E_READ),
        r(Patch, "/v1/schedules/{id}", "Change a schedule (ops)", J(json::<maintenance::Patch>), 200, J(json::<maintenance::ScheduleView>), &[], E_WRITE),
        r(Delete, "/v1/schedules/{id}", "Delete a schedule (ops); its logs stay", N, 204, N, &[], E_READ),
        r(Post, "/v1/logs", "Log maintenance done by hand", J(json::<maintenance::NewLog>), 201, J(json::<maintenance::LogView>), &[], E_WRITE),
        r(Get, "/v1/logs", "Maintenance logs (JSON, or CSV with Accept: text/csv)", N, 200, J(json::<maintenance::logs::LogList>), &[("schedule_id", false), ("property_id", false), ("from", false), ("to", false), ("limit", false)], E_READ),
        r(Post, "/v1/ops/maintenance/check", "Run the due/overdue check now (ops)", N, 200, J(json::<CheckReport>), &[], &[403]),
        r(Post, "/v1/parts", "Create a part (ops)", J(json::<stock::NewPart>), 201, J(json::<stock::PartView>), &[], E_WRITE),
        r(Get, "/v1/parts", "The parts catalogue", N, 200, J(json::<stock::PartList>), &[("q", false), ("fits", false), ("limit", false)], E_READ),
        r(Get, "/v1/parts/{id}", "One part", N, 200, J(json::<stock::PartView>), &[], E_READ),
        r(Patch, "/v1/parts/{id}", "Change a part (ops)", J(json::<stock::PartPatchIn>), 200, J(json::<stock::PartView>), &[], E_WRITE),
        r(Delete, "/v1/parts/{id}", "Delete a part (ops); its ledger stays", N, 204, N, &[], E_WRITE),
        r(Post, "/v1/stock/movements", "Post a stock movement", J(json::<stock::NewMovement>), 201, J(json::<stock::MovementView>), &[], E_WRITE),
        r(Get, "/v1/stock/movements", "The stock ledger", N, 200, J(json::<stock::ledger::MovementList>), &[("part_id", false), ("location", false), ("from", false), ("to", false), ("limit", false)], E_READ),
        r(Get, "/v1/stock", "Balances", N, 200, J(json::<stock::ledger::BalanceList>), &[("location", false), ("part_id", false), ("low", false), ("limit", false)], E_READ),
        r(Put, "/v1/stock/rules", "A location's reorder rule for a part (ops)", J(json::<stock::reorder::Rule>), 200, J(json::<stock::reorder::Rule>), &[], E_WRITE),
        r(Post, "/v1/ops/reorder/check", "Run the reorder check now (ops)", N, 200, J(json::<StockCheck>), &[], &[403]),
        r(Get, "/v1/ops/reorder/tasks", "Reorder tasks (ops)", N, 200, J(json::<stock::reorder::TaskList>), &[("status", false), ("limit", false)], &[400, 403]),
        r(Post, "/v1/ops/reorder/tasks/{id}/{step}", "A reorder task's step: ordered, received or cancel", J(json::<stock::reorder::StepIn>), 200, J(json::<stock::TaskView>), &[], E_WRITE),
        r(Get, "/v1/ops/analytics/parts", "Per-part analytics over a period (ops)", N, 200, J(json::<stock::reorder::PartAnalytics>), &[("from", false), ("to", false), ("limit", false)], &[400, 403]),
        r(Post, "/v1/triage", "Triage a description", J(json::<triage::TriageReq>), 200, J(json::<crate::wire::TriageView>), &[], &[400, 403, 413, 415]),
        r(Get, "/v1/triage/skills", "The skills triage knows", N, 200, J(json::<triage::SkillList>), &[("limit", false)], &[400]),
        r(Post, "/v1/ops/triage/examples", "Teach triage an example (ops)", J(json::<triage::ExampleIn>), 201, J(json::<triage::ExampleIn>), &[], &[400, 403, 413, 415]),
        r(Get, "/v1/ops/unmatched", "Dead letters (ops)", N, 200, J(json::<jobs::JobList>), &[("limit", false)], &[400, 403]),
        r(Post, "/v1/ops/unmatched/{id}/retry", "Retry a dead letter (ops)", N, 200, J(json::<JobView>), &[], E_WRITE),
        r(Put, "/v1/me/notifications", "The caller's notification settings", J(json::<notify::Prefs>), 200, J(json::<notify::Prefs>), &[], E_WRITE),
        r(Get, "/v1/me/notifications", "The caller's notification settings", N, 200, J(json::<notify::Prefs>), &[], &[]),
        r(Post, "/v1/ops/webhooks", "Add a webhook endpoint (ops)", J(json::<notify::NewWebhook>), 201, J(json::<notify::WebhookCreated>), &[], E_WRITE),
        r(Get, "/v1/ops/webhooks", "Webhook endpoints (ops)", N, 200, J(json::<notify::WebhookList>), &[("limit", false)], &[400, 403]),
        r(Delete, "/v1/ops/webhooks/{id}", "Remove a webhook endpoint (ops)", N, 204, N, &[], E_WRITE),
        r(Get, "/v1/ops/deliveries", "Notification deliveries (ops)", N, 200, J(json::<notify::DeliveryList>), &[("status", false), ("endpoint", false), ("limit", false)], &[400, 403]),
        r(Get, "/v1/ops/deliveries/{id}", "One delivery with its attempts (ops)", N, 200, J(json::<notify::DeliveryDetail>), &[], E_READ),
        r(Get, "/v1/ops/users/{id}/usage", "A user's stored upload bytes and quota (ops)", N, 200, J(json::<attachments::Usage>), &[], E_READ),
        r(Post, "/v1/ops/deliveries/{id}/retry", "Send a delivery again (ops)", N, 200, J(json::<notify::DeliveryOut>), &[], E_WRITE),
        r(Get, "/v1/ws", "The WebSocket (upgrade; accepts ?token=)", N, 101, N, &[("token", false), ("since", false), ("format", false)], &[400]),
        Route { auth: false, ..r(Get, "/healthz", "Liveness", N, 200, J(json::<Status>), &[], &[]) },
        Route { auth: false, ..r(Get, "/readyz", "Readiness (503 while recovering or draining)", N, 200, J(json::<Status>), &[], &[]) },
        Route { auth: false, ..r(Get, "/metrics", "Prometheus metrics", N, 200, Raw(&["text/plain"]), &[], &[]) },
        Route { auth: false, ..r(Get, "/openapi.json", "This document", N, 200, Raw(&["application/json"]), &[], &[]) },
        Route { auth: false, ..r(Get, "/ops", "The ops console", N, 200, Raw(&["text/html"]), &[], &[]) },
        Route { auth: false, ..r(Get, "/ops/{path}", "A file of the ops console (its script, styles, …)", N, 200, Raw(&["text/javascript", "text/css"]), &[], &[404]) },
        Route { auth: false, ..r(Get, "/app", "The app for residents and workers", N, 200, Raw(&["text/html"]), &[], &[]) },
        Route { auth: false, ..r(Get, "/app/", "The app for residents and workers", N, 200, Raw(&["text/html"]), &[], &[]) },
        Route { auth: false, ..r(Get, "/app/{path}", "A file of the app (script, styles, manifest, service worker, icons)", N, 200, Raw(&["text/javascript", "text/css", "application/manifest+json", "image/png"]), &[], &[404]) },
    ]
}

fn content(body: &Body, schemas: &mut Schemas) -> Option<Vec<(String, utoipa::openapi::Content)>> {
    match body {
        Body::None => None,
        Body::Json(f) => Some(vec![(
            "application/json".to_owned(),
            ContentBuilder::new().schema(Some(f(schemas))).build(),
        )]),
        Body::Raw(types) => Some(
            types
                .iter()
                .map(|t| {
                    // Text as a string; anything else as binary.
                    let binary = !(t.starts_with("text/") || *t == "application/json");
                    let s =
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .format(binary.then_some(utoipa::openapi::SchemaFormat::KnownFormat(
                                utoipa::openapi::KnownFormat::Binary,
                            )));
                    (
                        (*t).to_owned(),
                        ContentBuilder::new().schema(Some(s)).build(),
                    )
                })
                .collect(),
        ),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        101 => "Switching Protocols",
        400 => "Bad input (invalid_input; the message names the field)",
        401 => "Missing, malformed or expired token",
        403 => "The caller's role may not do this",
        404 => "No such thing, or the caller may not know of it",
        409 => "Conflicts with the current state",
        413 => "Body too large",
        415 => "Unsupported media type",
        422 => "Triage not sure enough (error.alternatives)",
        429 => "Rate limited (Retry-After)",
        _ => "Unavailable: recovering, draining or storage down; nothing changed",
    }
}

/// Builds the document (once).
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> OpenApi {
    let mut schemas: Schemas = Vec::new();
    let error = json::<ErrorBody>(&mut schemas);
    let mut paths = Paths::new();
    for route in routes() {
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .operation_id(Some(operation_id(route.method.clone(), route.path)));
        for name in path_params(route.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        for (name, required) in route.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(if *required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        if let Some(c) = content(&route.body, &mut schemas) {
            let mut b = RequestBodyBuilder::new().required(Some(Required::True));
            for (t, c) in c {
                b = b.content(t, c);
            }
            op = op.request_body(Some(b.build()));
        }
        let mut responses = ResponsesBuilder::new();
        let mut ok = ResponseBuilder::new().description(reason(route.ok));
        if let Some(c) = content(&route.out, &mut schemas) {
            for (t, c) in c {
                ok = ok.content(t, c);
            }
        }
        responses = responses.response(route.ok.to_string(), ok.build());
        let mut errors: Vec<u16> = route.errors.to_vec();
        if route.auth {
            errors.extend([401, 429]);
        }
        errors.push(503);
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            responses = responses.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(reason(status))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(error.clone())).build(),
                    )
                    .build(),
            );
        }
        op = op.responses(responses.build());
        if route.auth {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        paths.add_path_operation(route.path, vec![route.method], op.build());
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    components = components.schemas_from_iter(schemas);
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("dispatchd")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The public contract of dispatchd (API.md, v1 and v1.1): every HTTP route, \
                     its bodies and its errors. The WebSocket's messages are described in API.md.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn method_name(m: &HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Head => "HEAD",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Trace => "TRACE",
    }
}

fn operation_id(method: HttpMethod, path: &str) -> String {
    let m = method_name(&method).to_lowercase();
    let p: String = path
        .trim_start_matches('/')
        .replace(['/', '.'], "_")
        .replace(['{', '}'], "");
    format!("{m}_{p}")
}

/// Every (method, path) the document describes, for the router check.
pub fn operations() -> Vec<(String, String)> {
    routes()
        .iter()
        .map(|r| (method_name(&r.method).to_owned(), r.path.to_owned()))
        .collect()
}

pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| document().to_json().expect("the document serialises"));
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values a documented enum lists.
    fn values(name: &str) -> Vec<String> {
        let doc = serde_json::to_value(document()).unwrap();
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    fn strs(v: impl IntoIterator<Item = &'static str>) -> Vec<String> {
        v.into_iter().map(str::to_owned).collect()
    }

    /// The documented enums are copies of the engine's sets: they must not drift.
    #[test]
    fn documented_enums_are_the_engines_sets() {
        assert_eq!(
            values("JobStatus"),
            strs(engine::JobStatus::ALL.map(|s| s.as_str()))
        );
        assert_eq!(
            values("Urgency"),
            strs(engine::triage::Urgency::ALL.map(|u| u.as_str()))
        );
        assert_eq!(
            values("Role"),
            strs(persistence::Role::ALL.map(|r| r.as_str()))
        );
        assert_eq!(
            values("Channel"),
            strs(engine::notify::Channel::ALL.map(|c| c.name()))
        );
        assert_eq!(
            values("DeliveryStatus"),
            strs(engine::notify::outbox::DeliveryStatus::ALL.map(|s| s.name()))
        );
    }
}
