//! The contract's `Job` on the wire, with what v1.1 adds (property,
//! schedule, parts, urgency and triage, estimate, rating, payments).

use engine::{Job, Millis};
use serde::{Deserialize, Serialize};

use super::rfc3339;

/// The contract's `Job`, plus a few extra fields the contract allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    pub resident_id: String,
    pub lat: f64,
    pub lng: f64,
    pub skill: String,
    pub description: String,
    #[schema(value_type = crate::openapi::JobStatus)]
    pub status: String,
    pub worker_id: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub offered_at: Option<String>,
    pub accepted_at: Option<String>,
    pub arrived_at: Option<String>,
    pub completed_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub fare_cents: Option<i64>,
    /// Extension: when the open offer lapses.
    pub offer_expires_at: Option<String>,
    /// Extension: when the job became a dead letter.
    pub unmatched_at: Option<String>,
    /// Extension: the reason given on cancel.
    pub cancel_reason: Option<String>,
    /// Extension: grows with every change, so clients can drop stale updates.
    pub version: u64,
    /// The property it is at (v1.1), or null.
    #[serde(default)]
    pub property_id: Option<String>,
    /// The maintenance schedule that created it (v1.1), or null.
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// The parts it needs (v1.1): `[{part_id, qty}]`.
    #[serde(default)]
    pub parts: Vec<PartLineView>,
    /// `emergency | high | normal | low` (v1.1).
    #[serde(default)]
    #[schema(value_type = crate::openapi::Urgency)]
    pub urgency: String,
    /// What triage said of the description (v1.1), or null.
    #[serde(default)]
    pub triage: Option<TriageView>,
    /// `{low, high}` (v1.1), or null.
    #[serde(default)]
    pub estimate_cents: Option<Estimate>,
    /// Its resident's rating (v1.1), or null.
    #[serde(default)]
    pub rating: Option<RatingView>,
    /// The sum of its succeeded payments (v1.1).
    #[serde(default)]
    pub paid_cents: i64,
    /// Attachment ids it lists (v1.1; left out when none, which keeps the
    /// hot offer messages as small as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
    /// The name of the worker holding or offered it (v1.2), or null.
    #[serde(default)]
    pub worker_name: Option<String>,
    /// Where its worker is while on the way (v1.2; `GET /v1/jobs/{id}` for
    /// its resident and ops, while `accepted` with a fresh position), else null.
    #[serde(default)]
    pub worker_position: Option<WorkerPosition>,
}

/// The assigned worker's last position and the estimate from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerPosition {
    pub lat: f64,
    pub lng: f64,
    pub at: String,
    pub eta_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatingView {
    pub stars: u8,
    pub comment: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Estimate {
    pub low: i64,
    pub high: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkillConfidence {
    pub skill: String,
    pub confidence: f64,
}

/// The contract's triage result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriageView {
    pub skill: String,
    #[schema(value_type = crate::openapi::Urgency)]
    pub urgency: String,
    pub confidence: f64,
    pub matched: Vec<String>,
    pub estimate_cents: Estimate,
    pub alternatives: Vec<SkillConfidence>,
}

impl From<&engine::triage::TriageResult> for TriageView {
    fn from(t: &engine::triage::TriageResult) -> TriageView {
        TriageView {
            skill: t.skill.clone(),
            urgency: t.urgency.as_str().to_owned(),
            confidence: t.confidence,
            matched: t.matched.clone(),
            estimate_cents: Estimate {
                low: t.estimate_cents.0,
                high: t.estimate_cents.1,
            },
            alternatives: t
                .alternatives
                .iter()
                .map(|(skill, confidence)| SkillConfidence {
                    skill: skill.clone(),
                    confidence: *confidence,
                })
                .collect(),
        }
    }
}

/// A line of a job that needs parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartLineView {
    pub part_id: String,
    pub qty: i64,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> JobView {
        let t = |m: Option<Millis>| m.map(rfc3339);
        JobView {
            id: j.id.as_str().to_string(),
            resident_id: j.resident_id.as_str().to_string(),
            lat: j.lat,
            lng: j.lng,
            skill: j.skill.as_str().to_string(),
            description: j.description.clone(),
            status: j.status.as_str().to_string(),
            worker_id: j.worker_id.as_ref().map(|w| w.as_str().to_string()),
            attempts: j.attempts,
            created_at: rfc3339(j.created_at),
            offered_at: t(j.offered_at),
            accepted_at: t(j.accepted_at),
            arrived_at: t(j.arrived_at),
            completed_at: t(j.completed_at),
            cancelled_at: t(j.cancelled_at),
            fare_cents: j.fare_cents,
            offer_expires_at: t(j
                .offer_expires_at
                .filter(|_| j.status == engine::JobStatus::Offered)),
            unmatched_at: t(j.unmatched_at),
            cancel_reason: j.cancel_reason.clone(),
            version: j.version,
            property_id: j.property_id.clone(),
            schedule_id: j.schedule_id.clone(),
            parts: j
                .parts
                .iter()
                .map(|l| PartLineView {
                    part_id: l.part_id.clone(),
                    qty: l.qty,
                })
                .collect(),
            urgency: j.urgency.as_str().to_owned(),
            triage: j.triage.as_deref().map(TriageView::from),
            estimate_cents: j.estimate_cents.map(|(low, high)| Estimate { low, high }),
            rating: j.rating.as_ref().map(|r| RatingView {
                stars: r.stars,
                comment: r.comment.clone(),
                at: rfc3339(r.at),
            }),
            paid_cents: j.paid_cents(),
            attachments: j.attachments.clone(),
            worker_name: j.worker_name.clone(),
            worker_position: None,
        }
    }
}
