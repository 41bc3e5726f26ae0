//! Authentication: HS256 JWTs (only that algorithm, only our secret),
//! argon2id password hashes, and the [`User`] extractor every `/v1` route
//! and the WebSocket use.

use std::sync::Arc;

use argon2::Params;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey, Header, Validation};
use persistence::Role;
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::hasher::Hasher;
use crate::limits::Budget;

/// Longest `sub` claim accepted (ids are ours: uuids or operator-chosen names).
const MAX_SUB_LEN: usize = 128;

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY_S: u64 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Extension: skills of a worker whose token was minted by an operator
    /// (`dispatchd token --skills`) rather than by registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<Vec<String>>,
}

/// Signs and checks tokens; hashes and verifies passwords.
pub struct Auth {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    /// Bounded password hashing (register, login).
    pub hasher: Hasher,
    pub ttl_s: u64,
    /// Verified against when a login names an unknown email, so that both
    /// kinds of failure take as long.
    dummy: tokio::sync::OnceCell<String>,
}

impl Auth {
    pub fn new(cfg: &AuthConfig) -> Auth {
        let mut validation = Validation::new(JwtAlg::HS256);
        validation.leeway = LEEWAY_S;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let params = Params::new(cfg.argon2_memory_kib, cfg.argon2_iterations, 1, None)
            .expect("validated argon2 params");
        let threads = match cfg.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Auth {
            enc: EncodingKey::from_secret(cfg.jwt_secret.as_bytes()),
            dec: DecodingKey::from_secret(cfg.jwt_secret.as_bytes()),
            validation,
            hasher: Hasher::start(params, threads),
            ttl_s: cfg.token_ttl_s,
            dummy: tokio::sync::OnceCell::new(),
        }
    }

    /// A token for `sub` valid `ttl_s` seconds from `now_s`; returns it and its `exp`.
    pub fn mint(
        &self,
        sub: &str,
        role: Role,
        skills: Option<Vec<String>>,
        now_s: u64,
        ttl_s: u64,
    ) -> (String, u64) {
        let exp = now_s + ttl_s;
        let claims = Claims {
            sub: sub.to_string(),
            role,
            exp,
            iat: Some(now_s),
            skills,
        };
        let token = jsonwebtoken::encode(&Header::new(JwtAlg::HS256), &claims, &self.enc)
            .expect("HS256 signing cannot fail");
        (token, exp)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| {
                ApiError::Unauthorized("missing, malformed, expired or badly signed token")
            })?;
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUB_LEN {
            return Err(ApiError::Unauthorized(
                "token subject must be 1 to 128 bytes",
            ));
        }
        Ok(claims)
    }

    /// A stored hash for `password` (bounded: see [`Hasher`]).
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        self.hasher.hash(password).await
    }

    /// Verifies `password` against the stored hash, or — for an unknown
    /// account — against a dummy hash, so both failures take as long.
    pub async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, ApiError> {
        let phc = match phc {
            Some(p) => p,
            None => self
                .dummy
                .get_or_try_init(|| self.hasher.hash("not-a-real-password-0A".into()))
                .await?
                .clone(),
        };
        self.hasher.verify(password, phc).await
    }
}

/// The contract's password rule: 8+ characters with upper, lower and a digit.
pub fn check_password(p: &str) -> Result<(), ApiError> {
    let ok = p.chars().count() >= 8
        && p.len() <= 256
        && p.chars().any(|c| c.is_uppercase())
        && p.chars().any(|c| c.is_lowercase())
        && p.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "password",
            "must be 8 to 256 characters with an upper case letter, a lower case letter and a digit",
        ))
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Arc<str>,
    pub role: Role,
    pub skills: Option<Vec<String>>,
}

impl User {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your role may not do this"))
        }
    }
}

impl From<Claims> for User {
    fn from(c: Claims) -> User {
        User {
            id: c.sub.into(),
            role: c.role,
            skills: c.skills,
        }
    }
}

/// `Authorization: Bearer <token>`, or `?token=` where allowed.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let h = headers.get(axum::http::header::AUTHORIZATION)?;
    let s = h.to_str().ok()?;
    let (scheme, token) = s.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn authenticate(
    parts: &Parts,
    state: &crate::app::AppState,
    budget: Budget,
) -> Result<User, ApiError> {
    let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized("missing bearer token"))?;
    let user: User = state.auth.verify(token)?.into();
    state.limit(budget, &user.id, false)?;
    Ok(user)
}

/// The caller of an ordinary route; spends the request budget.
impl FromRequestParts<crate::app::AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::app::AppState,
    ) -> Result<User, ApiError> {
        authenticate(parts, state, Budget::Requests)
    }
}

/// Role sets for [`Allowed`]: a bit per role.
pub mod may {
    pub const OPS: u8 = 1;
    pub const RESIDENT: u8 = 2;
    pub const WORKER: u8 = 4;
}

fn role_bit(r: Role) -> u8 {
    match r {
        Role::Ops => may::OPS,
        Role::Resident => may::RESIDENT,
        Role::Worker => may::WORKER,
    }
}

/// The caller of a route that only the roles in `ROLES` (a [`may`] mask)
/// may use: checked as the request's parts are read, so a caller whose
/// role may never use the route gets 403 whatever its body holds (API.md
/// v1.2, "roles before bodies") — the body is parsed after this.
pub struct Allowed<const ROLES: u8>(pub User);

impl<const ROLES: u8> FromRequestParts<crate::app::AppState> for Allowed<ROLES> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::app::AppState,
    ) -> Result<Allowed<ROLES>, ApiError> {
        let user = authenticate(parts, state, Budget::Requests)?;
        if role_bit(user.role) & ROLES == 0 {
            return Err(ApiError::Forbidden("your role may not do this"));
        }
        Ok(Allowed(user))
    }
}

/// The caller of the HTTP location update; spends the location budget.
pub struct Locator(pub User);

impl FromRequestParts<crate::app::AppState> for Locator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::app::AppState,
    ) -> Result<Locator, ApiError> {
        authenticate(parts, state, Budget::Locations).map(Locator)
    }
}

/// The caller of a route calendar apps fetch (`/v1/schedules.ics`):
/// the bearer header, or `?token=` since those apps cannot send headers.
pub struct CalendarUser(pub User);

impl FromRequestParts<crate::app::AppState> for CalendarUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::app::AppState,
    ) -> Result<CalendarUser, ApiError> {
        if bearer(&parts.headers).is_some() {
            return authenticate(parts, state, Budget::Requests).map(CalendarUser);
        }
        let token = parts
            .uri
            .query()
            .into_iter()
            .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let user: User = state.auth.verify(&token)?.into();
        state.limit(Budget::Requests, &user.id, false)?;
        Ok(CalendarUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(&AuthConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..AuthConfig::default()
        })
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let a = auth();
        let now = 2_000_000_000;
        let (t, exp) = a.mint("u1", Role::Worker, None, now - 10, 3600);
        assert_eq!(exp, now + 3590);
        let c = a.verify(&t).unwrap();
        assert_eq!(c.sub, "u1");
        assert_eq!(c.role, Role::Worker);
        // Another secret.
        let other = Auth::new(&AuthConfig {
            jwt_secret: "another-secret-of-enough-length".into(),
            ..AuthConfig::default()
        });
        assert!(other.verify(&t).is_err());
        // alg: none.
        let mut parts: Vec<&str> = t.split('.').collect();
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        parts[0] = none;
        let forged = format!("{}.{}.", parts[0], parts[1]);
        assert!(a.verify(&forged).is_err());
        // Expired.
        let (old, _) = a.mint("u1", Role::Ops, None, 1_000, 10);
        assert!(a.verify(&old).is_err());
        // An empty or oversized subject names nobody.
        let (empty, _) = a.mint("", Role::Ops, None, now, 3600);
        assert!(a.verify(&empty).is_err());
        let (long, _) = a.mint(&"x".repeat(129), Role::Ops, None, now, 3600);
        assert!(a.verify(&long).is_err());
    }

    #[tokio::test]
    async fn passwords() {
        let a = auth();
        let h = a.hash_password("Secret123".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let check = |p: &str, h: Option<&str>| a.verify_password(p.into(), h.map(String::from));
        assert!(check("Secret123", Some(&h)).await.unwrap());
        assert!(!check("Secret124", Some(&h)).await.unwrap());
        assert!(!check("Secret123", Some("garbage")).await.unwrap());
        assert!(!check("Secret123", None).await.unwrap());
        assert!(check_password("Secret123").is_ok());
        for bad in ["short1A", "alllower123", "ALLUPPER123", "NoDigitsHere"] {
            assert!(check_password(bad).is_err(), "{bad}");
        }
    }
}
