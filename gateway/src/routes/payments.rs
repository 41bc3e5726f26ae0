//! Ratings, worker analytics and payments (API.md v1.1, "Intake" and
//! "Payments"). A payment comes from ops, or from the payment provider
//! signing the raw body per Standard Webhooks with `[payments]
//! webhook_secret` (timestamp within 5 minutes; several `v1,` signatures
//! accepted, for rotation; compared in constant time).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use engine::payment::{Payment, PaymentStatus};
use engine::{Job, JobId, JobQuery, JobStatus, Op, Pass, Viewer};
use persistence::Role;
use serde::{Deserialize, Serialize};

use crate::app::{AppState, Core};
use crate::auth::{bearer, may, Allowed, User};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::notify::sign::Secret;
use crate::wire::{job_id, rfc3339, JobView, PathIds};

/// How far a provider's timestamp may be from now.
const TOLERANCE_S: i64 = 300;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RatingIn {
    stars: i64,
    #[serde(default)]
    comment: Option<String>,
}

/// An archived job of `id` that `viewer` may see (to bring back).
async fn archived(core: &Core, id: &JobId, viewer: &Viewer) -> Result<Option<Job>, ApiError> {
    if core.engine.job(id).is_some() {
        return Ok(None);
    }
    core.backend.archived_job_for(id, viewer).await
}

pub async fn rate(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::RESIDENT }>,
    PathIds(id): PathIds<String>,
    Input(req): Input<RatingIn>,
) -> Result<Json<JobView>, ApiError> {
    let core = app.core()?;
    let id = job_id(&id)?;
    if !(1..=5).contains(&req.stars) {
        return Err(ApiError::invalid("stars", "must be an integer 1 to 5"));
    }
    if req
        .comment
        .as_ref()
        .is_some_and(|c| c.len() > engine::payment::MAX_COMMENT_BYTES)
    {
        return Err(ApiError::invalid("comment", "must be at most 1000 bytes"));
    }
    let viewer = Viewer::Resident(user.id.as_ref().into());
    core.settled(&app).await?;
    let old = archived(core, &id, &viewer).await?;
    let op = Op::RateJob {
        job: id,
        resident: user.id.as_ref().into(),
        stars: req.stars as u8,
        comment: req.comment,
        archived: old.map(Box::new),
    };
    let applied = core.exec(&app, op).await?;
    applied
        .job
        .map(|j| Json(JobView::from(&j)))
        .ok_or_else(|| ApiError::Unavailable("rating not applied".into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PaymentIn {
    job_id: String,
    amount_cents: i64,
    #[schema(value_type = crate::openapi::PaymentStatus)]
    status: String,
    provider_ref: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    id: String,
    job_id: String,
    amount_cents: i64,
    #[schema(value_type = crate::openapi::PaymentStatus)]
    status: &'static str,
    provider_ref: String,
    created_at: String,
    updated_at: String,
    /// Every accepted call that created or moved it, in order (an
    /// extension: the ledger an audit reads).
    calls: Vec<PaymentCallView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentCallView {
    #[schema(value_type = crate::openapi::PaymentStatus)]
    status: &'static str,
    amount_cents: i64,
    /// The provider's `webhook-id`; null for a call by ops.
    webhook_id: Option<String>,
    at: String,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> PaymentView {
        PaymentView {
            id: p.id.clone(),
            job_id: p.job_id.as_str().to_owned(),
            amount_cents: p.amount_cents,
            status: p.status.as_str(),
            provider_ref: p.provider_ref.clone(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            calls: p
                .calls
                .iter()
                .map(|c| PaymentCallView {
                    status: c.status.as_str(),
                    amount_cents: c.amount_cents,
                    webhook_id: c.webhook_id.clone(),
                    at: rfc3339(c.at),
                })
                .collect(),
        }
    }
}

/// Whether the provider signed `body` (Standard Webhooks headers); its
/// `webhook-id` (the call's idempotency key) when it did.
fn provider_signed(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let secret = &app.cfg.payments.webhook_secret;
    let secret = Secret::parse(secret).ok_or(ApiError::Unauthorized(
        "provider payments are not configured ([payments] webhook_secret)",
    ))?;
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sig)) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    ) else {
        return Err(ApiError::Unauthorized(
            "webhook-id, -timestamp and -signature are required",
        ));
    };
    let ts: i64 = ts
        .trim()
        .parse()
        .map_err(|_| ApiError::Unauthorized("bad webhook-timestamp"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (now - ts).abs() > TOLERANCE_S {
        return Err(ApiError::Unauthorized("webhook-timestamp too far from now"));
    }
    if !secret.verify(id, ts, body, sig) {
        return Err(ApiError::Unauthorized("bad webhook-signature"));
    }
    if id.is_empty() || id.len() > engine::payment::MAX_WEBHOOK_ID_BYTES {
        return Err(ApiError::invalid("webhook-id", "must be 1 to 256 bytes"));
    }
    Ok(id.to_owned())
}

/// `POST /v1/payments` (API.md v1.1, tightened in v1.2): a provider call
/// whose `webhook-id` the payment has seen, or that repeats its current
/// status and amount, answers 200 with the payment as it is; a status
/// only moves forward (else 409 `invalid_transition`, for ops too); the
/// amount is fixed by the first call and a `provider_ref` belongs to one
/// job (else 409 `conflict`).
pub async fn record(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<PaymentView>), ApiError> {
    // Ops by token, or the provider by signature; the body is read whole
    // only after one of them (its size is bounded by the body limit).
    let webhook_id = match bearer(&headers) {
        Some(token) => {
            let user: User = app.auth.verify(token)?.into();
            app.limit(crate::limits::Budget::Requests, &user.id, false)?;
            user.require(&[Role::Ops])?;
            None
        }
        None => Some(provider_signed(&app, &headers, &body)?),
    };
    let req: PaymentIn = crate::wire::parse(&body, crate::wire::Format::Json)?;
    let status = PaymentStatus::parse(&req.status).ok_or_else(|| {
        ApiError::invalid("status", "must be pending, succeeded, failed or refunded")
    })?;
    let core = app.core()?;
    let id = job_id(&req.job_id).map_err(|_| ApiError::invalid("job_id", "no such job"))?;
    let now = app.clock.now();
    let new_id = format!("pay_{}", uuid::Uuid::new_v4().simple());
    let payment = Payment {
        id: new_id.clone(),
        job_id: id.clone(),
        amount_cents: req.amount_cents,
        status,
        provider_ref: req.provider_ref,
        created_at: now,
        updated_at: now,
        calls: Vec::new(),
    };
    payment.validate()?;
    core.settled(&app).await?;
    // A ref first used by a job that has left memory: the archive knows.
    let owner = core
        .backend
        .record::<engine::payment::PaymentRef>(&payment.provider_ref)
        .await?;
    if owner.is_some_and(|r| r.job_id != id) {
        return Err(ApiError::Conflict(
            "this provider_ref belongs to another job",
        ));
    }
    let old = archived(core, &id, &Viewer::Ops).await?;
    if core.engine.job(&id).is_none() && old.is_none() {
        return Err(ApiError::invalid("job_id", "no such job"));
    }
    let provider_ref = payment.provider_ref.clone();
    let op = Op::RecordPayment {
        payment: Box::new(payment),
        archived: old.map(Box::new),
        webhook_id,
    };
    let applied = core.exec(&app, op).await?;
    // The payment as the command left it (a call that changed nothing
    // has no event: the job it answers with holds the payment as it is).
    let p = applied
        .job
        .as_ref()
        .and_then(|j| j.payments.iter().find(|p| p.provider_ref == provider_ref))
        .ok_or_else(|| ApiError::Unavailable("payment not applied".into()))?;
    // An update keeps the first payment's id.
    let st = if p.id == new_id {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((st, Json(PaymentView::from(p))))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentList {
    payments: Vec<PaymentView>,
}

pub async fn list(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::RESIDENT | may::OPS }>,
    PathIds(id): PathIds<String>,
    params: Params,
) -> Result<Json<PaymentList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit()?;
    let id = job_id(&id)?;
    let viewer = match user.role {
        Role::Ops => Viewer::Ops,
        _ => Viewer::Resident(user.id.as_ref().into()),
    };
    let job = core
        .job_for(&app, &id, &viewer)
        .await?
        .ok_or(ApiError::NotFound("job not found"))?;
    Ok(Json(PaymentList {
        payments: job
            .payments
            .iter()
            .take(limit)
            .map(PaymentView::from)
            .collect(),
    }))
}

#[derive(Default, Serialize, utoipa::ToSchema)]
pub struct WorkerStats {
    id: String,
    offered: u64,
    accepted: u64,
    declined: u64,
    expired: u64,
    completed: u64,
    acceptance_rate: Option<f64>,
    mean_stars: Option<f64>,
    mean_accept_s: Option<f64>,
    mean_arrive_s: Option<f64>,
    revenue_cents: i64,
    #[serde(skip)]
    stars: Vec<u8>,
    #[serde(skip)]
    accept_s: Vec<f64>,
    #[serde(skip)]
    arrive_s: Vec<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkerAnalytics {
    workers: Vec<WorkerStats>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64 * 10.0).round() / 10.0)
}

/// `GET /v1/ops/analytics/workers?from=&to=`: over the jobs created in
/// the period (default the last 30 days; at most the newest 20 000 of
/// the archive are read).
pub async fn worker_analytics(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<WorkerAnalytics>, ApiError> {
    let core = app.core()?;
    let limit = params.limit()?;
    let to = params.time("to")?.unwrap_or(app.clock.now());
    let from = params.time("from")?.unwrap_or(to.minus_secs(30 * 86_400));
    let q = JobQuery {
        viewer: Viewer::Ops,
        status: None,
        limit: 20_000,
    };
    let jobs = core.list_jobs(&app, &q).await?;
    let mut by: BTreeMap<String, WorkerStats> = BTreeMap::new();
    fn of<'a>(by: &'a mut BTreeMap<String, WorkerStats>, w: &str) -> &'a mut WorkerStats {
        by.entry(w.to_owned()).or_insert_with(|| WorkerStats {
            id: w.to_owned(),
            ..Default::default()
        })
    }
    for j in jobs
        .iter()
        .filter(|j| j.created_at >= from && j.created_at <= to)
    {
        for (w, pass) in &j.passed {
            let s = of(&mut by, w.as_str());
            s.offered += 1;
            match pass {
                Pass::Declined => s.declined += 1,
                Pass::Expired => s.expired += 1,
            }
        }
        let Some(w) = &j.worker_id else { continue };
        let s = of(&mut by, w.as_str());
        if j.offered_at.is_some() {
            s.offered += 1;
        }
        if let (Some(o), Some(a)) = (j.offered_at, j.accepted_at) {
            s.accepted += 1;
            s.accept_s.push((a.0 - o.0) as f64 / 1000.0);
        }
        if let (Some(a), Some(r)) = (j.accepted_at, j.arrived_at) {
            s.arrive_s.push((r.0 - a.0) as f64 / 1000.0);
        }
        if j.status == JobStatus::Completed {
            s.completed += 1;
            s.revenue_cents += j.fare_cents.unwrap_or(0);
            if let Some(r) = &j.rating {
                s.stars.push(r.stars);
            }
        }
    }
    let workers = by
        .into_values()
        .take(limit)
        .map(|mut s| {
            s.acceptance_rate = (s.offered > 0)
                .then(|| (s.accepted as f64 / s.offered as f64 * 1000.0).round() / 1000.0);
            let stars: Vec<f64> = s.stars.iter().map(|x| f64::from(*x)).collect();
            s.mean_stars = mean(&stars);
            s.mean_accept_s = mean(&s.accept_s);
            s.mean_arrive_s = mean(&s.arrive_s);
            s
        })
        .collect();
    Ok(Json(WorkerAnalytics { workers }))
}
