//! `POST /v1/auth/register` and `POST /v1/auth/login`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::Json;
use engine::{Op, Skill, WorkerId};
use persistence::{Account, Role};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{bearer, check_password};
use crate::body::Input;
use crate::error::ApiError;
use crate::limits::Budget;
use crate::wire::rfc3339;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterReq {
    email: String,
    password: String,
    name: String,
    #[schema(value_type = crate::openapi::Role)]
    role: String,
    #[serde(default)]
    skills: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Registered {
    id: String,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
}

/// Most skills one worker may list.
const MAX_SKILLS: usize = 32;

pub fn normalise_email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(e)
    } else {
        Err(ApiError::invalid("email", "must be an email address"))
    }
}

/// A user's display name: trimmed, 1 to 100 characters.
pub fn check_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_string())
}

fn parse_role(r: &str) -> Result<Role, ApiError> {
    Role::parse(r).ok_or_else(|| ApiError::invalid("role", "must be resident, worker or ops"))
}

pub fn parse_skills(raw: &[String]) -> Result<Vec<Skill>, ApiError> {
    if raw.is_empty() || raw.len() > MAX_SKILLS {
        return Err(ApiError::invalid("skills", "a worker lists 1 to 32 skills"));
    }
    raw.iter()
        .map(|s| {
            Skill::new(s)
                .map_err(|_| ApiError::invalid("skills", "each must match [a-z0-9_-]{1,32}"))
        })
        .collect()
}

/// The unauthenticated routes spend a per-address budget.
fn limit_by_address(app: &AppState, addr: SocketAddr) -> Result<(), ApiError> {
    let key: Arc<str> = format!("ip:{}", addr.ip()).into();
    app.limit(Budget::Auth, &key, false)
}

pub async fn register(
    State(app): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Input(req): Input<RegisterReq>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    limit_by_address(&app, addr)?;
    let email = normalise_email(&req.email)?;
    check_password(&req.password)?;
    let name = check_name(&req.name)?;
    let role = parse_role(&req.role)?;
    if role == Role::Ops {
        let token =
            bearer(&headers).ok_or(ApiError::Forbidden("only ops may create ops accounts"))?;
        if app.auth.verify(token)?.role != Role::Ops {
            return Err(ApiError::Forbidden("only ops may create ops accounts"));
        }
    }
    let skills = match role {
        Role::Worker => parse_skills(req.skills.as_deref().unwrap_or_default())?,
        Role::Resident | Role::Ops => Vec::new(),
    };
    let core = app.core()?;
    let password_hash = app.auth.hash_password(req.password).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let account = Account {
        id: id.clone(),
        email,
        password_hash,
        role,
        name,
        skills: skills.clone(),
        created_at: app.clock.now(),
    };
    core.create_account(account).await?;
    if role == Role::Worker {
        let op = Op::RegisterWorker {
            worker: WorkerId::from(id.as_str()),
            skills,
        };
        // The account is durable, so the registration succeeded: a worker
        // missing from the engine is registered from its account on first
        // connect (`Core::ensure_worker`). Failing here would leave the
        // email taken by an account its owner was told does not exist.
        if let Err(e) = core.exec(&app, op).await {
            tracing::warn!(error = %ApiError::from(e), worker = %id, "worker registered on first connect instead");
        }
    }
    Ok((StatusCode::CREATED, Json(Registered { id, role })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginReq {
    email: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoggedIn {
    token: String,
    expires_at: String,
    user: UserOut,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserOut {
    id: String,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    name: String,
}

pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Input(req): Input<LoginReq>,
) -> Result<Json<LoggedIn>, ApiError> {
    limit_by_address(&app, addr)?;
    let core = app.core()?;
    let account = match normalise_email(&req.email) {
        Ok(e) => core.account_by_email(&e).await?,
        Err(_) => None,
    };
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let ok = app.auth.verify_password(req.password, stored).await?;
    let account = match account {
        Some(a) if ok => a,
        _ => return Err(ApiError::Unauthorized("wrong email or password")),
    };
    let now_s = (app.clock.now().0 / 1000) as u64;
    let (token, exp) = app
        .auth
        .mint(&account.id, account.role, None, now_s, app.auth.ttl_s);
    Ok(Json(LoggedIn {
        token,
        expires_at: rfc3339(engine::Millis(exp as i64 * 1000)),
        user: UserOut {
            id: account.id,
            role: account.role,
            name: account.name,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalise_email(" A@B.example ").unwrap(), "a@b.example");
        for bad in ["", "a", "a@b", "@b.c", "a b@c.d", "a@b@c.d", "a@.b", "a@b."] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn skills() {
        assert!(parse_skills(&["plumbing".into(), "gas-safe".into()]).is_ok());
        assert!(parse_skills(&[]).is_err());
        assert!(parse_skills(&["Plumbing".into()]).is_err());
        assert!(parse_skills(&["x".repeat(33)]).is_err());
    }
}
