//! `/v1/ops`: the dead-letter list and its retry.

use axum::extract::State;
use axum::Json;
use engine::{JobQuery, JobStatus, Op, Viewer};

use crate::app::AppState;
use crate::auth::{may, Allowed};
use crate::body::Params;
use crate::error::ApiError;
use crate::routes::jobs::{answer, JobList};
use crate::wire::{job_id, JobView, PathIds};

pub async fn unmatched(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    params: Params,
) -> Result<Json<JobList>, ApiError> {
    let core = app.core()?;
    let limit = params.limit_or(500)?;
    let jobs = core
        .list_jobs(
            &app,
            &JobQuery {
                viewer: Viewer::Ops,
                status: Some(JobStatus::Unmatched),
                limit,
            },
        )
        .await?;
    Ok(Json(JobList {
        jobs: jobs.iter().map(JobView::from).collect(),
    }))
}

pub async fn retry(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    PathIds(id): PathIds<String>,
) -> Result<Json<JobView>, ApiError> {
    let core = app.core()?;
    let id = job_id(&id)?;
    // A dead letter that already left memory comes back with the command.
    let archived = match core.engine.job(&id) {
        Some(_) => None,
        None => core
            .backend
            .archived_job_for(&id, &Viewer::Ops)
            .await?
            .map(Box::new),
    };
    answer(core.exec(&app, Op::Retry { job: id, archived }).await?)
}
