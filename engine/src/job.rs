//! Jobs and their one state machine.
//!
//! Every status change goes through [`next`], one exhaustive `match` over
//! (step, status) with no catch-all arm: adding a status or a step does not
//! compile until each pair has been decided.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::types::{JobId, Millis, ResidentId, Skill, WorkerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Searching,
    Offered,
    Accepted,
    Arrived,
    Completed,
    Cancelled,
    Unmatched,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Searching,
        JobStatus::Offered,
        JobStatus::Accepted,
        JobStatus::Arrived,
        JobStatus::Completed,
        JobStatus::Cancelled,
        JobStatus::Unmatched,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Searching => "searching",
            JobStatus::Offered => "offered",
            JobStatus::Accepted => "accepted",
            JobStatus::Arrived => "arrived",
            JobStatus::Completed => "completed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Unmatched => "unmatched",
        }
    }

    /// Statuses in which the job holds its worker.
    pub fn holds_worker(self) -> bool {
        matches!(
            self,
            JobStatus::Offered | JobStatus::Accepted | JobStatus::Arrived
        )
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is being done to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Offer,
    Revoke,
    Accept,
    Arrive,
    Complete,
    Cancel,
    Unmatch,
    Retry,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Offer => "offer",
            Step::Revoke => "revoke the offer of",
            Step::Accept => "accept",
            Step::Arrive => "arrive at",
            Step::Complete => "complete",
            Step::Cancel => "cancel",
            Step::Unmatch => "dead-letter",
            Step::Retry => "retry",
        })
    }
}

/// The job state machine: where `step` takes a job in status `from`.
pub fn next(from: JobStatus, step: Step) -> Result<JobStatus, EngineError> {
    use JobStatus::*;
    let to = match (step, from) {
        (Step::Offer, Searching) => Offered,
        (Step::Offer, Offered | Accepted | Arrived | Completed | Cancelled | Unmatched) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Revoke, Offered) => Searching,
        (Step::Revoke, Searching | Accepted | Arrived | Completed | Cancelled | Unmatched) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Accept, Offered) => Accepted,
        (Step::Accept, Searching | Accepted | Arrived | Completed | Cancelled | Unmatched) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Arrive, Accepted) => Arrived,
        (Step::Arrive, Searching | Offered | Arrived | Completed | Cancelled | Unmatched) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Complete, Arrived) => Completed,
        (Step::Complete, Searching | Offered | Accepted | Completed | Cancelled | Unmatched) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Cancel, Searching | Offered | Accepted | Arrived | Unmatched) => Cancelled,
        (Step::Cancel, Completed | Cancelled) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Unmatch, Searching) => Unmatched,
        (Step::Unmatch, Offered | Accepted | Arrived | Completed | Cancelled | Unmatched) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
        (Step::Retry, Unmatched) => Searching,
        (Step::Retry, Searching | Offered | Accepted | Arrived | Completed | Cancelled) => {
            return Err(EngineError::InvalidTransition { from, step })
        }
    };
    Ok(to)
}

/// Why a worker no longer has an offer for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    Declined,
    Expired,
}

/// A job as the API shows it, plus the engine's bookkeeping (extra fields are
/// allowed by the contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub resident_id: ResidentId,
    pub lat: f64,
    pub lng: f64,
    pub skill: Skill,
    pub description: String,
    pub status: JobStatus,
    /// The worker offered or assigned the job now (or last, once it ended).
    pub worker_id: Option<WorkerId>,
    /// Offers made so far.
    pub attempts: u32,
    pub created_at: Millis,
    pub offered_at: Option<Millis>,
    pub accepted_at: Option<Millis>,
    pub arrived_at: Option<Millis>,
    pub completed_at: Option<Millis>,
    pub cancelled_at: Option<Millis>,
    pub fare_cents: Option<i64>,
    /// When the open offer lapses.
    pub offer_expires_at: Option<Millis>,
    /// Distance from the offered worker when the offer was made.
    pub offer_distance_m: Option<f64>,
    /// When the job goes to the dead letters if still not accepted.
    pub search_deadline: Option<Millis>,
    pub unmatched_at: Option<Millis>,
    pub cancel_reason: Option<String>,
    /// Workers who declined the job or let their offer lapse: never offered again.
    pub passed: Vec<(WorkerId, Pass)>,
    /// Order of creation; lists are newest first by it.
    pub seq: u64,
    /// Number of events applied to the job: a later view has a higher version.
    pub version: u64,
    /// The property it is at, if created at one. Absent before properties.
    #[serde(default)]
    pub property_id: Option<String>,
    /// The maintenance schedule it was created for, if any.
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// Parts it needs (matched to a worker whose van has them).
    #[serde(default)]
    pub parts: Vec<crate::stock::PartLine>,
    /// How urgent: waiting jobs are offered most urgent first, then oldest.
    #[serde(default)]
    pub urgency: crate::triage::Urgency,
    /// What triage said of its description, if it ran.
    #[serde(default)]
    pub triage: Option<Box<crate::triage::TriageResult>>,
    /// (low, high) cents: from triage, or this installation's fares.
    #[serde(default)]
    pub estimate_cents: Option<(i64, i64)>,
    /// Its resident's rating, once completed.
    #[serde(default)]
    pub rating: Option<crate::payment::Rating>,
    /// Payments recorded for it.
    #[serde(default)]
    pub payments: Vec<crate::payment::Payment>,
    /// Uploads it lists (photos, invoices): its author's own.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// The name of the worker holding or offered it, as it was then.
    #[serde(default)]
    pub worker_name: Option<String>,
    /// When its resident was last sent the worker's position (`WorkerTracked`).
    #[serde(default)]
    pub tracked_at: Option<Millis>,
}

impl Job {
    /// When the job reached a final status (completed, cancelled,
    /// unmatched); `None` while it is live.
    pub fn finished_at(&self) -> Option<Millis> {
        match self.status {
            JobStatus::Completed => self.completed_at,
            JobStatus::Cancelled => self.cancelled_at,
            JobStatus::Unmatched => self.unmatched_at,
            JobStatus::Searching
            | JobStatus::Offered
            | JobStatus::Accepted
            | JobStatus::Arrived => None,
        }
    }

    /// Whether the worker was ever offered or assigned this job.
    pub fn involves(&self, w: &WorkerId) -> bool {
        self.worker_id.as_ref() == Some(w) || self.passed.iter().any(|(p, _)| p == w)
    }

    pub fn pass_of(&self, w: &WorkerId) -> Option<Pass> {
        self.passed.iter().find(|(p, _)| p == w).map(|(_, r)| *r)
    }
}

/// Billing rule: integer cents per started increment, at least one increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    pub cents_per_increment: i64,
    pub increment_s: u64,
}

impl Default for Billing {
    fn default() -> Self {
        Billing {
            cents_per_increment: 1000,
            increment_s: 300,
        }
    }
}

impl Billing {
    /// `max(1, ceil((completed − arrived) / increment)) × cents_per_increment`.
    pub fn fare_cents(&self, arrived: Millis, completed: Millis) -> i64 {
        let dur_ms = completed.0.saturating_sub(arrived.0).max(0) as u128;
        let inc_ms = (self.increment_s.max(1) as u128) * 1000;
        let increments = dur_ms.div_ceil(inc_ms).max(1);
        let fare = increments.saturating_mul(self.cents_per_increment.max(0) as u128);
        i64::try_from(fare).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fare_edges() {
        let b = Billing::default();
        let t0 = Millis(1_700_000_000_000);
        let at = |s: i64| Millis(t0.0 + s * 1000);
        assert_eq!(
            b.fare_cents(t0, t0),
            1000,
            "zero seconds bills one increment"
        );
        assert_eq!(b.fare_cents(t0, at(1)), 1000);
        assert_eq!(b.fare_cents(t0, at(299)), 1000);
        assert_eq!(
            b.fare_cents(t0, at(300)),
            1000,
            "exactly 5:00 is one increment"
        );
        assert_eq!(b.fare_cents(t0, at(301)), 2000, "5:01 starts a second");
        assert_eq!(b.fare_cents(t0, Millis(at(300).0 + 1)), 2000, "one ms over");
        assert_eq!(b.fare_cents(t0, at(3600)), 12_000, "one hour");
        assert_eq!(b.fare_cents(t0, at(3 * 3600 + 1)), 37_000, "3 h and 1 s");
        assert_eq!(
            b.fare_cents(at(10), t0),
            1000,
            "clock skew never bills below one"
        );
        let custom = Billing {
            cents_per_increment: 250,
            increment_s: 60,
        };
        assert_eq!(custom.fare_cents(t0, at(61)), 500);
    }

    #[test]
    fn transitions() {
        use JobStatus::*;
        let ok = [
            (Searching, Step::Offer, Offered),
            (Offered, Step::Revoke, Searching),
            (Offered, Step::Accept, Accepted),
            (Accepted, Step::Arrive, Arrived),
            (Arrived, Step::Complete, Completed),
            (Searching, Step::Unmatch, Unmatched),
            (Unmatched, Step::Retry, Searching),
        ];
        for (from, step, to) in ok {
            assert_eq!(next(from, step), Ok(to));
        }
        for from in [Searching, Offered, Accepted, Arrived, Unmatched] {
            assert_eq!(next(from, Step::Cancel), Ok(Cancelled));
        }
        for from in [Completed, Cancelled] {
            for step in [
                Step::Offer,
                Step::Revoke,
                Step::Accept,
                Step::Arrive,
                Step::Complete,
                Step::Cancel,
                Step::Unmatch,
                Step::Retry,
            ] {
                assert_eq!(
                    next(from, step),
                    Err(EngineError::InvalidTransition { from, step }),
                    "{from} is final"
                );
            }
        }
        assert!(next(Searching, Step::Accept).is_err());
        assert!(next(Accepted, Step::Complete).is_err());
        assert!(next(Offered, Step::Arrive).is_err());
        assert!(next(Offered, Step::Unmatch).is_err());
    }
}
