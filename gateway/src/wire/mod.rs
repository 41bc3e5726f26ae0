//! Wire types: the contract's `Job`, the WebSocket messages in both
//! directions, and the one parser that turns JSON or MessagePack bytes into
//! them (unknown or malformed input is an [`ApiError`], never a panic).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::{JobId, Millis};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

mod job;
mod server;

pub use job::{
    Estimate, JobView, PartLineView, RatingView, SkillConfidence, TriageView, WorkerPosition,
};
pub use server::{FleetEntry, ServerMsg};

/// Longest job id a path or message may carry (ours are 36 bytes).
const MAX_ID_LEN: usize = 128;

/// An untrusted id (path segment, WS message, query): one that cannot be
/// ours is simply not found (`not_found` says what).
pub fn known_id<'a>(raw: &'a str, not_found: &'static str) -> Result<&'a str, ApiError> {
    if raw.is_empty() || raw.len() > MAX_ID_LEN {
        return Err(ApiError::NotFound(not_found));
    }
    Ok(raw)
}

/// An untrusted job id.
pub fn job_id(raw: &str) -> Result<JobId, ApiError> {
    known_id(raw, "job not found").map(JobId::from)
}

/// Path parameters (`/v1/jobs/{id}` …). A segment that does not decode
/// (not UTF-8 after percent-decoding) is the contract's 400, not axum's
/// plain-text rejection.
pub struct PathIds<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for PathIds<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathIds(p.0))
            .map_err(|_| ApiError::invalid("path", "not valid UTF-8 or not a valid id"))
    }
}

/// How a client's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Msgpack,
}

/// Parses `bytes` as `T`; an error names the offending field where serde can tell.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], format: Format) -> Result<T, ApiError> {
    let res = match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| describe(e.path().to_string(), e.inner().to_string()))
                .and_then(|v| {
                    de.end()
                        .map(|_| v)
                        .map_err(|e| describe(".".into(), e.to_string()))
                })
        }
        Format::Msgpack => {
            let mut de = rmp_serde::Deserializer::new(bytes);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| describe(e.path().to_string(), e.inner().to_string()))
                .and_then(|v| {
                    // As JSON: one value and nothing after it.
                    if de.get_ref().is_empty() {
                        Ok(v)
                    } else {
                        Err(describe(
                            ".".into(),
                            "trailing bytes after the value".into(),
                        ))
                    }
                })
        }
    };
    res.map_err(ApiError::InvalidInput)
}

fn describe(path: String, inner: String) -> std::borrow::Cow<'static, str> {
    // A field the body may not name (a PATCH of something it cannot
    // change): the message starts with that field (API.md v1.2).
    if let Some(field) = inner
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        return format!("{field}: cannot be set here").into();
    }
    if path == "." || path.is_empty() {
        format!("body: {inner}").into()
    } else {
        format!("{path}: {inner}").into()
    }
}

/// Lowercase hex of a digest (attachment names, ETags, idempotent ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: Millis) -> String {
    let st = if t.0 >= 0 {
        UNIX_EPOCH + Duration::from_millis(t.0 as u64)
    } else {
        UNIX_EPOCH
    };
    humantime::format_rfc3339_millis(st).to_string()
}

pub fn now() -> Millis {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(d.as_millis() as i64)
}

/// A client's `req_id`: a string or an integer, echoed back as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReqId {
    Int(i64),
    UInt(u64),
    Str(String),
}

/// Read first, on its own, so that a failure can still be matched to its request.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub req_id: Option<ReqId>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Location {
        lat: f64,
        lng: f64,
    },
    Availability {
        available: bool,
    },
    Accept {
        job_id: String,
    },
    Decline {
        job_id: String,
    },
    Arrive {
        job_id: String,
    },
    Complete {
        job_id: String,
    },
    Subscribe {
        job_id: String,
    },
    Unsubscribe {
        job_id: String,
    },
    /// Ops (v1.1): `fleet` and/or `jobs`.
    Watch {
        topics: Vec<String>,
    },
    Unwatch {
        topics: Vec<String>,
    },
    Ping,
}

impl ClientMsg {
    /// Every metric label: each [`ClientMsg::name`], and `invalid` for
    /// what does not parse.
    pub const NAMES: [&'static str; 12] = [
        "location",
        "availability",
        "accept",
        "decline",
        "arrive",
        "complete",
        "subscribe",
        "unsubscribe",
        "watch",
        "unwatch",
        "ping",
        "invalid",
    ];

    /// Metric label.
    pub fn name(&self) -> &'static str {
        match self {
            ClientMsg::Location { .. } => "location",
            ClientMsg::Availability { .. } => "availability",
            ClientMsg::Accept { .. } => "accept",
            ClientMsg::Decline { .. } => "decline",
            ClientMsg::Arrive { .. } => "arrive",
            ClientMsg::Complete { .. } => "complete",
            ClientMsg::Subscribe { .. } => "subscribe",
            ClientMsg::Unsubscribe { .. } => "unsubscribe",
            ClientMsg::Watch { .. } => "watch",
            ClientMsg::Unwatch { .. } => "unwatch",
            ClientMsg::Ping => "ping",
        }
    }
}

/// A client message's `type`, for the one-pass parse.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Location,
    Availability,
    Accept,
    Decline,
    Arrive,
    Complete,
    Subscribe,
    Unsubscribe,
    Watch,
    Unwatch,
    Ping,
}

/// Every field any client message has, in one flat struct: a well-formed
/// message (a position report above all) is read in one pass, without the
/// buffering an internally tagged enum needs.
#[derive(Deserialize)]
struct Flat {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default)]
    req_id: Option<ReqId>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lng: Option<f64>,
    #[serde(default)]
    available: Option<bool>,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    topics: Option<Vec<String>>,
}

fn fast(bytes: &[u8], format: Format) -> Option<(ClientMsg, Option<ReqId>)> {
    let f: Flat = match format {
        Format::Json => serde_json::from_slice(bytes).ok()?,
        Format::Msgpack => {
            let mut de = rmp_serde::Deserializer::new(bytes);
            let f = Flat::deserialize(&mut de).ok()?;
            if !de.get_ref().is_empty() {
                return None;
            }
            f
        }
    };
    let job = f.job_id;
    let msg = match f.kind {
        Kind::Location => ClientMsg::Location {
            lat: f.lat?,
            lng: f.lng?,
        },
        Kind::Availability => ClientMsg::Availability {
            available: f.available?,
        },
        Kind::Accept => ClientMsg::Accept { job_id: job? },
        Kind::Decline => ClientMsg::Decline { job_id: job? },
        Kind::Arrive => ClientMsg::Arrive { job_id: job? },
        Kind::Complete => ClientMsg::Complete { job_id: job? },
        Kind::Subscribe => ClientMsg::Subscribe { job_id: job? },
        Kind::Unsubscribe => ClientMsg::Unsubscribe { job_id: job? },
        Kind::Watch => ClientMsg::Watch { topics: f.topics? },
        Kind::Unwatch => ClientMsg::Unwatch { topics: f.topics? },
        Kind::Ping => ClientMsg::Ping,
    };
    Some((msg, f.req_id))
}

/// Parses a client message and its `req_id`. Well-formed messages take one
/// pass; anything else goes the careful way, so that the error names the
/// field and still carries the `req_id` when one can be read.
pub fn parse_client(
    bytes: &[u8],
    format: Format,
) -> Result<(ClientMsg, Option<ReqId>), (ApiError, Option<ReqId>)> {
    if let Some(m) = fast(bytes, format) {
        return Ok(m);
    }
    let msg = parse::<ClientMsg>(bytes, format);
    match (parse::<Envelope>(bytes, format), msg) {
        (Ok(env), Ok(m)) => Ok((m, env.req_id)),
        (Ok(env), Err(e)) => Err((e, env.req_id)),
        // A message that is fine but for its req_id must not run unanswered.
        (Err(_), Ok(_)) => Err((
            ApiError::invalid("req_id", "must be a string or an integer"),
            None,
        )),
        (Err(_), Err(e)) => Err((e, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_in_both_formats() {
        let m: ClientMsg = parse(
            br#"{"type":"location","lat":52.5,"lng":13.4,"req_id":7}"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMsg::Location {
                lat: 52.5,
                lng: 13.4
            }
        );
        let env: Envelope = parse(br#"{"type":"ping","req_id":"a"}"#, Format::Json).unwrap();
        assert_eq!(env.req_id, Some(ReqId::Str("a".into())));

        #[derive(Serialize)]
        struct Accept<'a> {
            r#type: &'a str,
            job_id: &'a str,
        }
        let bytes = rmp_serde::to_vec_named(&Accept {
            r#type: "accept",
            job_id: "j1",
        })
        .unwrap();
        let m: ClientMsg = parse(&bytes, Format::Msgpack).unwrap();
        assert_eq!(
            m,
            ClientMsg::Accept {
                job_id: "j1".into()
            }
        );
    }

    #[test]
    fn bad_input_is_an_error_naming_the_problem() {
        for (bytes, needle) in [
            (&br#"{"type":"warp"}"#[..], "unknown variant"),
            (br#"{"lat":1}"#, "type"),
            (br#"{"type":"location","lat":"x","lng":1}"#, "invalid type"),
            (
                br#"{"type":"location","lat":1e999,"lng":1}"#,
                "number out of range",
            ),
            (br#"not json"#, "expected"),
            (br#"{"type":"ping"} trailing"#, "trailing"),
        ] {
            let e = parse::<ClientMsg>(bytes, Format::Json).unwrap_err();
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        }
        assert!(parse::<ClientMsg>(&[0xc1, 0xff], Format::Msgpack).is_err());
    }

    /// The one-pass parse and the careful one agree on every message.
    #[test]
    fn fast_and_careful_parses_agree() {
        let cases: &[&[u8]] = &[
            br#"{"type":"location","lat":52.5,"lng":13.4,"req_id":7}"#,
            br#"{"type":"location","lng":13.4,"lat":-1e-3,"extra":[1,2]}"#,
            br#"{"type":"availability","available":false,"req_id":"a"}"#,
            br#"{"type":"accept","job_id":"j1"}"#,
            br#"{"type":"subscribe","job_id":"j1","req_id":18446744073709551615}"#,
            br#"{"type":"ping"}"#,
            br#"{"type":"location","lat":null,"lng":1}"#,
            br#"{"type":"location","lat":"1","lng":1,"req_id":3}"#,
            br#"{"type":"accept","req_id":4}"#,
            br#"{"type":"warp","req_id":5}"#,
            br#"{"type":"ping","req_id":1.5}"#,
            br#"{"type":"ping"} x"#,
        ];
        for (k, c) in cases.iter().enumerate() {
            // The first six are well formed and must take the one-pass route.
            assert_eq!(
                fast(c, Format::Json).is_some(),
                k < 6,
                "{}",
                String::from_utf8_lossy(c)
            );
            let careful = match parse::<Envelope>(c, Format::Json) {
                Ok(env) => parse::<ClientMsg>(c, Format::Json)
                    .map(|m| (m, env.req_id.clone()))
                    .map_err(|e| (e, env.req_id)),
                Err(_) => Err((
                    parse::<ClientMsg>(c, Format::Json)
                        .err()
                        .unwrap_or_else(|| {
                            ApiError::invalid("req_id", "must be a string or an integer")
                        }),
                    None,
                )),
            };
            assert_eq!(
                parse_client(c, Format::Json),
                careful,
                "{}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn server_messages_have_the_contract_shape() {
        let v: serde_json::Value = serde_json::from_str(
            &ServerMsg::Ack {
                req_id: ReqId::Int(3),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(v, serde_json::json!({"type":"ack","req_id":3}));
        let v: serde_json::Value = serde_json::from_str(&ServerMsg::Pong.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"pong"}));
        assert_eq!(rfc3339(Millis(0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_bad_req_id_is_an_error_not_silence() {
        for bad in [
            &br#"{"type":"ping","req_id":1.5}"#[..],
            br#"{"type":"accept","job_id":"j","req_id":true}"#,
            br#"{"type":"ping","req_id":[1]}"#,
            br#"{"type":"ping","req_id":{"a":1}}"#,
        ] {
            let (e, req_id) = parse_client(bad, Format::Json).unwrap_err();
            assert_eq!(
                e.code(),
                "invalid_input",
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(e.to_string().starts_with("req_id"), "{e}");
            assert_eq!(req_id, None);
        }
    }

    #[test]
    fn msgpack_with_trailing_bytes_is_refused_like_json() {
        #[derive(Serialize)]
        struct Ping {
            #[serde(rename = "type")]
            t: &'static str,
        }
        let mut bytes = rmp_serde::to_vec_named(&Ping { t: "ping" }).unwrap();
        assert!(parse_client(&bytes, Format::Msgpack).is_ok());
        bytes.push(0xc0);
        let (e, _) = parse_client(&bytes, Format::Msgpack).unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(parse::<Envelope>(&bytes, Format::Msgpack).is_err());
    }
}
