//! What the server sends over the WebSocket: every message type, its
//! metric name, and its two encodings.

use serde::{Deserialize, Serialize};

use super::{JobView, ReqId};
use crate::error::ApiError;

/// A message from the server (API.md, "WebSocket").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Offer {
        job_id: String,
        lat: f64,
        lng: f64,
        skill: String,
        description: String,
        distance_m: f64,
        expires_at: String,
        /// The change that caused it (resume with `?since=`).
        seq: u64,
    },
    OfferRevoked {
        job_id: String,
        reason: String,
        seq: u64,
    },
    Job {
        job: Box<JobView>,
        seq: u64,
    },
    /// After a `?since=` replay: the latest `seq`; `gap` when the client
    /// must re-read its jobs over HTTP.
    Resumed {
        seq: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gap: bool,
    },
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req_id: Option<ReqId>,
        /// Extension: with `rate_limited`, seconds until the budget allows another.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
    },
    Ack {
        req_id: ReqId,
    },
    Pong,
    /// Extension (v1.1): a maintenance alert (`maintenance.due` /
    /// `maintenance.overdue`), to the property's owner and the assigned
    /// worker, as the due/overdue check raises it.
    Maintenance {
        event: String,
        schedule_id: String,
        property_id: String,
        title: String,
        due_at: String,
        seq: u64,
    },
    /// The assigned worker's position while an accepted job's worker is on
    /// the way (v1.2), to its resident and the job's subscribers.
    Tracking {
        job_id: String,
        lat: f64,
        lng: f64,
        at: String,
        eta_s: u64,
        seq: u64,
    },
    /// Ops watching `fleet` (v1.1): the snapshot (extension: `full:
    /// true`), then the workers that changed, at most once a second.
    Fleet {
        workers: Vec<FleetEntry>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        full: bool,
    },
}

/// One worker on the ops map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetEntry {
    pub id: String,
    pub lat: f64,
    pub lng: f64,
    /// `available | offered | busy | stale | offline`.
    pub state: String,
}

impl ServerMsg {
    pub fn error(e: &ApiError, req_id: Option<ReqId>) -> ServerMsg {
        ServerMsg::Error {
            code: e.code().to_string(),
            message: e.to_string(),
            req_id,
            retry_after_s: e.retry_after_s(),
        }
    }

    /// Metric label.
    /// Every [`ServerMsg::name`], for metrics.
    pub const NAMES: [&'static str; 10] = [
        "offer",
        "offer_revoked",
        "job",
        "resumed",
        "error",
        "ack",
        "pong",
        "maintenance",
        "tracking",
        "fleet",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            ServerMsg::Offer { .. } => "offer",
            ServerMsg::OfferRevoked { .. } => "offer_revoked",
            ServerMsg::Job { .. } => "job",
            ServerMsg::Resumed { .. } => "resumed",
            ServerMsg::Error { .. } => "error",
            ServerMsg::Ack { .. } => "ack",
            ServerMsg::Pong => "pong",
            ServerMsg::Maintenance { .. } => "maintenance",
            ServerMsg::Tracking { .. } => "tracking",
            ServerMsg::Fleet { .. } => "fleet",
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages serialise")
    }

    pub fn to_msgpack(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("server messages serialise")
    }
}
