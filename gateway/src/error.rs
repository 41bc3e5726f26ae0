//! The one place errors meet the wire: every failure a handler or a socket
//! can report is an [`ApiError`], which knows its HTTP status and its
//! contract code. HTTP bodies and WebSocket `error` messages come from here.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::EngineError;
use persistence::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The caller's input is wrong; the message names the field.
    #[error("{0}")]
    InvalidInput(Cow<'static, str>),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such thing, or the caller may not know it exists.
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    InvalidTransition(String),
    #[error("the offer for this job expired")]
    OfferExpired,
    #[error("this email is already registered")]
    EmailTaken,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("a part with this sku exists")]
    SkuTaken,
    #[error("not enough stock available")]
    InsufficientStock,
    #[error("this job was rated already")]
    AlreadyRated,
    /// Triage could not tell the skill: the skills it weighed.
    #[error("triage is not sure what this needs; give a skill")]
    TriageUncertain(Vec<(String, f64)>),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// An upload past the user's storage quota (413 `quota_exceeded`).
    #[error("this upload would exceed your storage quota ([attachments] quota_bytes_per_user)")]
    QuotaExceeded,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("too many requests; retry after {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Not ready, shutting down, or storage failed: nothing was acknowledged.
    #[error("{0}")]
    Unavailable(Cow<'static, str>),
    /// At capacity for now (password hashing): 503 with `Retry-After`.
    #[error("{0}")]
    Busy(&'static str),
}

impl ApiError {
    pub fn invalid(field: &str, reason: &str) -> ApiError {
        ApiError::InvalidInput(format!("{field}: {reason}").into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidTransition(_)
            | ApiError::OfferExpired
            | ApiError::EmailTaken
            | ApiError::SkuTaken
            | ApiError::InsufficientStock
            | ApiError::AlreadyRated
            | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TriageUncertain(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) | ApiError::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidInput(_) => "invalid_input",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::InvalidTransition(_) => "invalid_transition",
            ApiError::OfferExpired => "offer_expired",
            ApiError::EmailTaken => "email_taken",
            ApiError::Conflict(_) => "conflict",
            ApiError::SkuTaken => "sku_taken",
            ApiError::InsufficientStock => "insufficient_stock",
            ApiError::AlreadyRated => "already_rated",
            ApiError::TriageUncertain(_) => "triage_uncertain",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::QuotaExceeded => "quota_exceeded",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) | ApiError::Busy(_) => "unavailable",
        }
    }

    /// Whole seconds to put in `Retry-After` (at least 1).
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited(d) => Some(d.as_secs_f64().ceil().max(1.0) as u64),
            ApiError::Busy(_) => Some(1),
            _ => None,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::InvalidInput { field, reason } => ApiError::invalid(field, reason),
            EngineError::UnknownWorker => ApiError::NotFound("unknown worker"),
            EngineError::JobNotFound => ApiError::NotFound("job not found"),
            EngineError::DuplicateJob => ApiError::Conflict("a job with this id already exists"),
            e @ (EngineError::InvalidTransition { .. } | EngineError::PaymentTransition { .. }) => {
                ApiError::InvalidTransition(e.to_string())
            }
            EngineError::OfferExpired => ApiError::OfferExpired,
            EngineError::NotFound(what) => ApiError::NotFound(what),
            EngineError::Conflict(why) => ApiError::Conflict(why),
            EngineError::SkuTaken => ApiError::SkuTaken,
            EngineError::InsufficientStock => ApiError::InsufficientStock,
            EngineError::AlreadyRated => ApiError::AlreadyRated,
            EngineError::QuotaExceeded => ApiError::QuotaExceeded,
            EngineError::Corrupt(m) => {
                tracing::error!(error = %m, "engine reported inconsistent state");
                ApiError::Unavailable("internal inconsistency; nothing was changed".into())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::EmailTaken => ApiError::EmailTaken,
            StoreError::Conflict => ApiError::Conflict("already exists"),
            e => {
                tracing::error!(error = %e, "storage failed");
                ApiError::Unavailable("storage unavailable".into())
            }
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alternatives: Option<Vec<Alternative<'a>>>,
}

#[derive(Serialize)]
struct Alternative<'a> {
    skill: &'a str,
    confidence: f64,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code(),
                message: self.to_string(),
                alternatives: match &self {
                    ApiError::TriageUncertain(a) => Some(
                        a.iter()
                            .map(|(skill, confidence)| Alternative {
                                skill,
                                confidence: *confidence,
                            })
                            .collect(),
                    ),
                    _ => None,
                },
            },
        };
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{JobStatus, Step};

    #[test]
    fn engine_errors_map_to_the_contract() {
        let cases = [
            (
                EngineError::InvalidInput {
                    field: "lat",
                    reason: "bad",
                },
                400,
                "invalid_input",
            ),
            (EngineError::JobNotFound, 404, "not_found"),
            (
                EngineError::InvalidTransition {
                    from: JobStatus::Completed,
                    step: Step::Cancel,
                },
                409,
                "invalid_transition",
            ),
            (EngineError::OfferExpired, 409, "offer_expired"),
            (EngineError::NotFound("webhook not found"), 404, "not_found"),
            (EngineError::Conflict("too many webhooks"), 409, "conflict"),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!(a.status().as_u16(), status);
            assert_eq!(a.code(), code);
        }
        assert_eq!(
            ApiError::invalid("lat", "must be finite").to_string(),
            "lat: must be finite"
        );
        assert_eq!(
            ApiError::RateLimited(Duration::from_millis(1200)).retry_after_s(),
            Some(2)
        );
    }
}
