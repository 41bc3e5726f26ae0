//! `/v1/jobs`: create (with idempotency keys), read, list, cancel, and the
//! worker's accept / decline / arrive / complete.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use engine::{Applied, JobId, JobQuery, JobStatus, NewJob, Op, Skill, Step, WorkerId, WorkerStep};
use persistence::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app::{viewer, AppState};
use crate::auth::{may, Allowed, User};
use crate::backend::ExecError;
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::{job_id, JobView, PathIds, WorkerPosition};

const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_REASON_CHARS: usize = 500;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateJob {
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lng: Option<f64>,
    /// Instead of `lat`/`lng`: the job takes the property's position (v1.1).
    #[serde(default)]
    property_id: Option<String>,
    /// Absent: triage decides from the description (v1.1).
    #[serde(default)]
    skill: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// `emergency | high | normal | low` (v1.1); default: triage's.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Urgency>)]
    urgency: Option<String>,
    /// Parts the job needs (v1.1): matched to a worker whose van has them.
    #[serde(default)]
    parts: Option<Vec<crate::routes::stock::LineIn>>,
    /// Photos or invoices the caller uploaded (v1.1).
    #[serde(default)]
    attachments: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

/// The job a command's receipt carries, for the response: what the
/// command made of it, never a later command's result.
pub fn answer(applied: Applied) -> Result<Json<JobView>, ApiError> {
    applied
        .job
        .map(|j| Json(JobView::from(&j)))
        .ok_or(ApiError::Unavailable(
            "command answered without its job".into(),
        ))
}

/// A retried create must find the job its first try made: the id is a
/// hash of the resident and the key, so it survives restarts with the log.
fn idempotent_id(resident: &str, key: &str) -> JobId {
    let mut h = Sha256::new();
    h.update(resident.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    JobId::from(format!("job_{}", crate::wire::hex(&h.finalize()[..16])))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .ok()
        .filter(|k| {
            (1..=MAX_IDEMPOTENCY_KEY).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(k))
}

pub async fn create(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::RESIDENT | may::OPS }>,
    headers: HeaderMap,
    Input(req): Input<CreateJob>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    // Residents create their own jobs; ops only at a property (the job is
    // then its owner's).
    if user.role == Role::Ops && req.property_id.is_none() {
        return Err(ApiError::Forbidden(
            "ops create jobs only at a property (property_id)",
        ));
    }
    let key = idempotency_key(&headers)?;
    let core = app.core()?;
    let urgency = req
        .urgency
        .as_deref()
        .map(|u| {
            engine::triage::Urgency::parse(u).ok_or_else(|| {
                ApiError::invalid("urgency", "must be emergency, high, normal or low")
            })
        })
        .transpose()?;
    let description = req.description.clone().unwrap_or_default();
    if description.len() > engine::MAX_DESCRIPTION_BYTES {
        return Err(ApiError::invalid(
            "description",
            "must be at most 4096 bytes",
        ));
    }
    // Triage reads the description (µs); without a skill it decides it.
    let triage = (!description.trim().is_empty()).then(|| core.engine.triage(&description));
    let skill = match (&req.skill, &triage) {
        (Some(s), _) => {
            Skill::new(s).map_err(|_| ApiError::invalid("skill", "must match [a-z0-9_-]{1,32}"))?
        }
        (None, Some(t)) if t.confidence >= app.cfg.triage.min_confidence => {
            Skill::new(&t.skill).expect("triage skills are valid")
        }
        (None, Some(t)) => return Err(ApiError::TriageUncertain(t.alternatives_with_best())),
        (None, None) => {
            return Err(ApiError::invalid(
                "skill",
                "is required (or a description to triage)",
            ))
        }
    };
    let (resident, lat, lng, property) = match (&req.property_id, req.lat, req.lng) {
        (Some(pid), None, None) => {
            let p = crate::routes::properties::usable(&core.engine, &user, pid)?;
            (p.owner_id.as_str().to_owned(), p.lat, p.lng, Some(p.id))
        }
        (Some(_), _, _) => {
            return Err(ApiError::invalid(
                "property_id",
                "give either property_id or lat/lng, not both",
            ))
        }
        (None, Some(lat), Some(lng)) => (user.id.to_string(), lat, lng, None),
        (None, None, _) => return Err(ApiError::invalid("lat", "is required (or property_id)")),
        (None, Some(_), None) => {
            return Err(ApiError::invalid("lng", "is required (or property_id)"))
        }
    };
    let id = match key {
        Some(k) => idempotent_id(&user.id, k),
        None => JobId::from(format!("job_{}", uuid::Uuid::new_v4().simple())),
    };
    let new = NewJob {
        id: id.clone(),
        resident_id: resident.as_str().into(),
        lat,
        lng,
        skill,
        description,
    };
    // The engine checks again; checked first so a cluster never logs a
    // command bound to fail.
    new.validate()?;
    let repeat = || async {
        let job = core
            .job_for(&app, &id, &viewer(&user))
            .await?
            .ok_or(ApiError::Conflict("idempotency key already used"))?;
        Ok((StatusCode::OK, Json(JobView::from(&job))))
    };
    // A retry of a job old enough to be archived finds it there.
    if key.is_some()
        && core.engine.job(&id).is_none()
        && core
            .backend
            .archived_job_for(&id, &viewer(&user))
            .await?
            .is_some()
    {
        return repeat().await;
    }
    let lines: Vec<engine::stock::PartLine> = req
        .parts
        .iter()
        .flatten()
        .map(|l| l.line())
        .collect::<Result<_, _>>()?;
    // Checked first so a cluster never logs a command bound to fail.
    let lines = core.engine.check_lines(&lines)?;
    let attachments = req.attachments.unwrap_or_default();
    crate::routes::attachments::own_uploads(core, &user.id, &attachments).await?;
    let plain = lines.is_empty() && attachments.is_empty();
    let op = match (property, plain, urgency, triage) {
        (Some(property_id), true, None, None) => Op::CreatePropertyJob {
            job: new,
            property_id,
        },
        (None, true, None, None) => Op::CreateJob(new),
        (property_id, _, urgency, triage) => Op::CreateJobWith {
            job: new,
            opts: Box::new(engine::jobs::JobOptions {
                property_id,
                parts: lines,
                urgency,
                triage: triage.map(Box::new),
                attachments,
            }),
        },
    };
    match core.exec(&app, op).await {
        Ok(applied) => Ok((StatusCode::CREATED, answer(applied)?)),
        Err(ExecError::Engine(engine::EngineError::DuplicateJob)) if key.is_some() => {
            repeat().await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn get(
    State(app): State<AppState>,
    user: User,
    PathIds(id): PathIds<String>,
) -> Result<Json<JobView>, ApiError> {
    let core = app.core()?;
    let id = job_id(&id)?;
    let job = core
        .job_for(&app, &id, &viewer(&user))
        .await?
        .ok_or(ApiError::NotFound("job not found"))?;
    let mut view = view_for(&user, &job);
    if user.role != Role::Worker {
        view.worker_position = worker_position(&app, &core.engine, &job);
    }
    Ok(Json(view))
}

/// Where an accepted job's worker is, from a position that is not stale.
fn worker_position(
    app: &AppState,
    engine: &engine::Engine,
    job: &engine::Job,
) -> Option<WorkerPosition> {
    if job.status != JobStatus::Accepted {
        return None;
    }
    let p = engine.fresh_position(job.worker_id.as_ref()?, app.clock.now())?;
    Some(WorkerPosition {
        lat: p.lat,
        lng: p.lng,
        at: crate::wire::rfc3339(p.reported_at),
        eta_s: app.hub.eta_s((p.lat, p.lng), (job.lat, job.lng)),
    })
}

pub async fn list(
    State(app): State<AppState>,
    user: User,
    params: Params,
) -> Result<Json<JobList>, ApiError> {
    let core = app.core()?;
    let status = match params.0.get("status") {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "must be searching, offered, accepted, arrived, completed, cancelled or unmatched",
            )
        })?),
    };
    let limit = params.limit_or(50)?;
    let jobs = core
        .list_jobs(
            &app,
            &JobQuery {
                viewer: viewer(&user),
                status,
                limit,
            },
        )
        .await?;
    Ok(Json(JobList {
        jobs: jobs.iter().map(|j| view_for(&user, j)).collect(),
    }))
}

/// The job as `user` sees it: a worker who declined it or let its offer
/// lapse does not learn the name of the worker who has it now.
fn view_for(user: &User, job: &engine::Job) -> JobView {
    let mut view = JobView::from(job);
    if user.role == Role::Worker && job.worker_id.as_ref().map(|w| w.as_str()) != Some(&*user.id) {
        view.worker_name = None;
    }
    view
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CancelReq {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn cancel(
    State(app): State<AppState>,
    Allowed(user): Allowed<{ may::RESIDENT | may::OPS }>,
    PathIds(id): PathIds<String>,
    Input(req): Input<CancelReq>,
) -> Result<Json<JobView>, ApiError> {
    if req
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::invalid(
            "reason",
            "must be at most 500 characters",
        ));
    }
    let core = app.core()?;
    let id = job_id(&id)?;
    if core.engine.job_for(&id, &viewer(&user)).is_none() {
        // Archived jobs are finished: cancelling one is out of order.
        return match core.backend.archived_job_for(&id, &viewer(&user)).await? {
            Some(j) => Err(finished(&j, Step::Cancel)),
            None => Err(ApiError::NotFound("job not found")),
        };
    }
    let applied = core
        .exec(
            &app,
            Op::Cancel {
                job: id,
                reason: req.reason,
            },
        )
        .await?;
    answer(applied)
}

pub async fn step(
    State(app): State<AppState>,
    user: User,
    PathIds((id, step)): PathIds<(String, String)>,
) -> Result<Json<JobView>, ApiError> {
    let step = WorkerStep::parse(&step).ok_or(ApiError::NotFound("no such route"))?;
    user.require(&[Role::Worker])?;
    let core = app.core()?;
    let id = job_id(&id)?;
    let op = Op::Step {
        job: id.clone(),
        worker: WorkerId::from(&*user.id),
        step,
    };
    match core.exec(&app, op).await {
        Ok(applied) => answer(applied),
        // A step on an archived job the worker was involved in: out of order.
        Err(ExecError::Engine(engine::EngineError::JobNotFound)) => {
            match core.backend.archived_job_for(&id, &viewer(&user)).await? {
                Some(j) => Err(finished(&j, step.engine_step())),
                None => Err(ApiError::NotFound("job not found")),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The refusal for a step on a finished (archived) job.
fn finished(job: &engine::Job, step: Step) -> ApiError {
    engine::EngineError::InvalidTransition {
        from: job.status,
        step,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_ids_depend_on_resident_and_key() {
        let a = idempotent_id("r1", "k");
        assert_eq!(a, idempotent_id("r1", "k"));
        assert_ne!(a, idempotent_id("r2", "k"));
        assert_ne!(a, idempotent_id("r1", "k2"));
        assert_ne!(idempotent_id("r1", "1k"), idempotent_id("r11", "k"));
        assert_eq!(a.as_str().len(), 36);
    }
}
