//! Triage (API.md v1.1, "Intake"): classify a description, list the
//! skills it knows, and learn from ops' examples.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use engine::triage::{Example, Urgency, SKILLS};
use engine::Op;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{may, Allowed, User};
use crate::body::{Input, Params};
use crate::error::ApiError;
use crate::wire::TriageView;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TriageReq {
    description: String,
}

fn description(d: &str) -> Result<&str, ApiError> {
    if d.trim().is_empty() || d.len() > engine::MAX_DESCRIPTION_BYTES {
        return Err(ApiError::invalid("description", "must be 1 to 4096 bytes"));
    }
    Ok(d)
}

pub async fn triage(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::RESIDENT | may::OPS }>,
    Input(req): Input<TriageReq>,
) -> Result<Json<TriageView>, ApiError> {
    let core = app.core()?;
    let r = core.engine.triage(description(&req.description)?);
    Ok(Json(TriageView::from(&r)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SkillList {
    skills: Vec<&'static str>,
}

pub async fn skills(_user: User, params: Params) -> Result<Json<SkillList>, ApiError> {
    let limit = params.limit()?;
    Ok(Json(SkillList {
        skills: SKILLS.iter().copied().take(limit).collect(),
    }))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct ExampleIn {
    description: String,
    skill: String,
    #[schema(value_type = crate::openapi::Urgency)]
    urgency: String,
}

pub async fn add_example(
    State(app): State<AppState>,
    Allowed(_user): Allowed<{ may::OPS }>,
    Input(req): Input<ExampleIn>,
) -> Result<(StatusCode, Json<ExampleIn>), ApiError> {
    let core = app.core()?;
    let urgency = Urgency::parse(&req.urgency)
        .ok_or_else(|| ApiError::invalid("urgency", "must be emergency, high, normal or low"))?;
    let example = Example {
        description: description(&req.description)?.to_owned(),
        skill: req.skill.clone(),
        urgency,
    };
    example.validate()?;
    core.exec(&app, Op::AddTriageExample(example)).await?;
    Ok((StatusCode::CREATED, Json(req)))
}
