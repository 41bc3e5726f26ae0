//! `GET /v1/me` and `PATCH /v1/me` (API.md v1.2 "Profile"): who the token
//! is, and the two things a user may change about themselves.

use axum::extract::State;
use axum::Json;
use engine::{Op, WorkerId};
use persistence::{Account, Role};
use serde::{Deserialize, Serialize};

use crate::app::{AppState, Core};
use crate::auth::User;
use crate::body::Input;
use crate::error::ApiError;
use crate::routes::auth::{check_name, parse_skills};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    id: String,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    name: String,
    /// Null for a minted token without an account.
    email: Option<String>,
    /// Workers only (null for others).
    skills: Option<Vec<String>>,
    /// Workers only (null for others).
    available: Option<bool>,
}

/// What `PATCH /v1/me` may change; any other field is refused by name.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    #[serde(default)]
    name: Option<String>,
    /// Workers only, as at registration.
    #[serde(default)]
    skills: Option<Vec<String>>,
}

pub async fn get(State(app): State<AppState>, user: User) -> Result<Json<Me>, ApiError> {
    let core = app.core()?;
    let account = core.account(&user.id).await?;
    Ok(Json(me(core, &user, account.as_ref())))
}

pub async fn patch(
    State(app): State<AppState>,
    user: User,
    Input(req): Input<MePatch>,
) -> Result<Json<Me>, ApiError> {
    let name = req.name.as_deref().map(check_name).transpose()?;
    let skills = match (&req.skills, user.role) {
        (None, _) => None,
        (Some(s), Role::Worker) => Some(parse_skills(s)?),
        (Some(_), Role::Resident | Role::Ops) => {
            return Err(ApiError::invalid("skills", "only workers have skills"))
        }
    };
    let core = app.core()?;
    let mut account = core.account(&user.id).await?;
    if account.is_none() && user.role != Role::Worker {
        // A minted resident or ops token: nothing of theirs is stored.
        return Err(ApiError::NotFound("no account for this token"));
    }
    if let Some(a) = &mut account {
        let renamed = name.as_ref().is_some_and(|n| *n != a.name);
        let reskilled = skills.as_ref().is_some_and(|s| *s != a.skills);
        if renamed || reskilled {
            if let Some(n) = &name {
                a.name.clone_from(n);
            }
            if let Some(s) = &skills {
                a.skills.clone_from(s);
            }
            core.update_account(a.clone()).await?;
        }
    }
    if user.role == Role::Worker {
        // The engine matches on the worker's skills and shows its name.
        let handle = core.ensure_worker(&app, &user).await?;
        if let Some(skills) = skills {
            let op = Op::RegisterWorker {
                worker: handle.id().clone(),
                skills,
            };
            core.exec(&app, op).await?;
        }
        if let Some(name) = name {
            let op = Op::NameWorker {
                worker: handle.id().clone(),
                name,
            };
            core.exec(&app, op).await?;
        }
    }
    Ok(Json(me(core, &user, account.as_ref())))
}

fn me(core: &Core, user: &User, account: Option<&Account>) -> Me {
    let worker = (user.role == Role::Worker)
        .then(|| core.engine.worker(&WorkerId::from(&*user.id)))
        .flatten();
    let name = account
        .map(|a| a.name.clone())
        .or_else(|| worker.as_ref().and_then(|w| w.name.clone()))
        .unwrap_or_else(|| user.id.to_string());
    let skills = (user.role == Role::Worker).then(|| match (&worker, account, &user.skills) {
        (Some(w), _, _) => w.skills.iter().map(|s| s.as_str().to_owned()).collect(),
        (None, Some(a), _) => a.skills.iter().map(|s| s.as_str().to_owned()).collect(),
        (None, None, Some(s)) => s.clone(),
        (None, None, None) => Vec::new(),
    });
    Me {
        id: user.id.to_string(),
        role: user.role,
        name,
        email: account.map(|a| a.email.clone()),
        skills,
        available: (user.role == Role::Worker)
            .then(|| worker.as_ref().is_some_and(|w| w.available)),
    }
}
