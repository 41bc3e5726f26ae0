//! Request bodies: JSON or MessagePack by `Content-Type`, size-limited, and
//! parsed into a typed struct whose errors name the field. Every rejection
//! is an [`ApiError`] with the contract's shape.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::ApiError;
use crate::wire::{parse, Format};

/// A parsed body. An empty body reads as `{}`, so routes whose fields are
/// all optional accept a bare POST.
pub struct Input<T>(pub T);

fn format_of(content_type: Option<&str>) -> Result<Option<Format>, ApiError> {
    let Some(ct) = content_type else {
        return Ok(None);
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Some(Format::Json)),
        "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => {
            Ok(Some(Format::Msgpack))
        }
        _ => Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json or application/msgpack",
        )),
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let max = state.cfg.limits.max_body_bytes;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(ApiError::PayloadTooLarge(max));
        }
        let ct = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("invalid"));
        let format = format_of(ct)?;
        let bytes = axum::body::to_bytes(req.into_body(), max)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(max))?;
        // No body at all reads as `{}`: routes whose fields are all optional
        // (cancel) accept a bare POST, and the others name the missing field.
        if bytes.is_empty() {
            return parse(b"{}", Format::Json).map(Input);
        }
        let Some(format) = format else {
            return Err(ApiError::UnsupportedMediaType(
                "a body needs Content-Type application/json or application/msgpack",
            ));
        };
        parse(&bytes, format).map(Input)
    }
}

/// Query parameters as strings; each route parses and checks its own.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::InvalidInput(format!("query: {}", e.body_text()).into()))
    }
}

/// The most any list route returns at once.
pub const MAX_LIMIT: usize = 500;

/// The earliest and latest instants the API takes (API.md v1.2):
/// 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
pub const EARLIEST: engine::Millis = engine::Millis(0);
pub const LATEST: engine::Millis = engine::Millis(253_402_300_799_000);

/// An RFC 3339 instant between [`EARLIEST`] and [`LATEST`]; `field` names
/// it in the error.
pub fn instant(field: &str, raw: &str) -> Result<engine::Millis, ApiError> {
    // jiff's range ends a day early (9999-12-30T22:00Z, to leave room for
    // offsets): the last day, in UTC, is read by humantime.
    let t = raw
        .parse::<jiff::Timestamp>()
        .map(|t| engine::Millis(t.as_millisecond()))
        .or_else(|_| {
            humantime::parse_rfc3339(raw.trim()).map(|t| {
                let ms = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(-1, |d| d.as_millis() as i64);
                engine::Millis(ms)
            })
        })
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time"))?;
    if !(EARLIEST..=LATEST).contains(&t) {
        return Err(ApiError::invalid(
            field,
            "must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ));
    }
    Ok(t)
}

impl Params {
    /// An optional RFC 3339 instant.
    pub fn time(&self, field: &str) -> Result<Option<engine::Millis>, ApiError> {
        self.0.get(field).map(|s| instant(field, s)).transpose()
    }

    /// A list's `limit`: default 50, an integer in 1..500 (API.md v1.1,
    /// checked on every list route: v1.2).
    pub fn limit(&self) -> Result<usize, ApiError> {
        self.limit_or(50)
    }

    /// A list's `limit` where the route's default is not 50.
    pub fn limit_or(&self, default: usize) -> Result<usize, ApiError> {
        Ok(self.num("limit", 1usize..=MAX_LIMIT)?.unwrap_or(default))
    }

    /// An optional number in `range`; `field` names it in errors.
    pub fn num<T: std::str::FromStr + PartialOrd + Copy>(
        &self,
        field: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ApiError> {
        let Some(raw) = self.0.get(field) else {
            return Ok(None);
        };
        let v: T = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(field, "must be a number"))?;
        if !range.contains(&v) {
            return Err(ApiError::invalid(field, "out of range"));
        }
        Ok(Some(v))
    }

    pub fn required<T: std::str::FromStr + PartialOrd + Copy>(
        &self,
        field: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ApiError> {
        self.num(field, range)?
            .ok_or_else(|| ApiError::invalid(field, "is required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(format_of(None).unwrap(), None);
        assert_eq!(
            format_of(Some("application/json; charset=utf-8")).unwrap(),
            Some(Format::Json)
        );
        assert_eq!(
            format_of(Some("application/msgpack")).unwrap(),
            Some(Format::Msgpack)
        );
        assert_eq!(
            format_of(Some("text/plain")).unwrap_err().code(),
            "unsupported_media_type"
        );
    }

    #[test]
    fn times_lie_between_1970_and_9999() {
        assert!(instant("at", "1969-12-31T23:59:59Z").is_err());
        assert_eq!(instant("at", "1970-01-01T00:00:00Z").unwrap(), EARLIEST);
        assert_eq!(instant("at", "9999-12-31T23:59:59Z").unwrap(), LATEST);
        assert!(instant("at", "9999-12-31T23:59:59.5Z").is_err());
        assert!(instant("at", "-000001-01-01T00:00:00Z").is_err());
        let e = instant("start_at", "1900-01-01T00:00:00Z").unwrap_err();
        assert!(e.to_string().starts_with("start_at"), "{e}");
    }

    #[test]
    fn params_check_numbers() {
        let p = Params(HashMap::from([
            ("limit".to_string(), "10".to_string()),
            ("lat".to_string(), "NaN".to_string()),
            ("lng".to_string(), "abc".to_string()),
        ]));
        assert_eq!(p.num("limit", 1usize..=500).unwrap(), Some(10));
        assert_eq!(p.num("missing", 1usize..=500).unwrap(), None);
        assert!(p.num("limit", 20usize..=500).is_err());
        // NaN parses as f64 but is in no range.
        assert!(p.required("lat", -90.0..=90.0).is_err());
        assert!(p.required("lng", -180.0..=180.0).is_err());
    }
}
