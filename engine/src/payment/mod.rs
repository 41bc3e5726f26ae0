//! Ratings and payments (API.md v1.1, "Intake" and "Payments"): both are
//! part of their job and travel with it — into snapshots, and into the
//! archive when the job leaves memory. A rating or payment for a job that
//! was archived brings it back in the same command (`JobRestored`), like a
//! retried dead letter; the archive pass takes it out again.

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, JobReceipt, JobTable};
use crate::error::EngineError;
use crate::event::EventKind;
use crate::job::{Job, JobStatus};
use crate::types::{JobId, Millis, ResidentId};

/// Longest rating comment kept, bytes.
pub const MAX_COMMENT_BYTES: usize = 1000;
/// Most payments one job may have.
pub const MAX_PAYMENTS: usize = 100;

/// A resident's rating of a completed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub stars: u8,
    pub comment: Option<String>,
    pub at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Some(match s {
            "pending" => PaymentStatus::Pending,
            "succeeded" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "refunded" => PaymentStatus::Refunded,
            _ => return None,
        })
    }
    /// Whether a payment that is `self` may become `to` (API.md v1.2:
    /// statuses only move forward). The same status is no move at all.
    pub fn may_become(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        match (self, to) {
            (Pending, Succeeded | Failed) | (Failed, Succeeded) | (Succeeded, Refunded) => true,
            (Pending | Succeeded | Failed | Refunded, _) => false,
        }
    }

    pub const ALL: [PaymentStatus; 4] = [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// A payment from the provider (or recorded by ops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub job_id: JobId,
    pub amount_cents: i64,
    pub status: PaymentStatus,
    /// The provider's reference: the same again updates this payment.
    pub provider_ref: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Every accepted call that created or moved it, in order (the
    /// ledger an audit reads; at most one per status).
    #[serde(default)]
    pub calls: Vec<PaymentCall>,
}

/// One accepted call on a payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCall {
    pub status: PaymentStatus,
    pub amount_cents: i64,
    /// The provider's `webhook-id` (its idempotency key); `None` for ops.
    pub webhook_id: Option<String>,
    pub at: Millis,
}

/// Which job a `provider_ref` belongs to: a history record written with
/// a payment's first call, so the rule "a ref belongs to one job" holds
/// after the job left memory for the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRef {
    /// The `provider_ref`.
    pub id: String,
    pub job_id: JobId,
    pub at: Millis,
}

impl PaymentRef {
    /// The record a `PaymentRecorded` writes: only a payment's first call.
    pub fn from_event(kind: &EventKind, at: Millis) -> Option<PaymentRef> {
        match kind {
            EventKind::PaymentRecorded { job_id, payment } if payment.calls.len() <= 1 => {
                Some(PaymentRef {
                    id: payment.provider_ref.clone(),
                    job_id: job_id.clone(),
                    at,
                })
            }
            _ => None,
        }
    }
}

/// Longest `webhook-id` kept.
pub const MAX_WEBHOOK_ID_BYTES: usize = 256;

impl Payment {
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if !(1..=100_000_000_000).contains(&self.amount_cents) {
            return bad("amount_cents", "must be an integer 1 to 100000000000");
        }
        if self.provider_ref.trim().is_empty() || self.provider_ref.len() > 200 {
            return bad("provider_ref", "must be 1 to 200 bytes");
        }
        if self.id.is_empty() || self.id.len() > 128 {
            return bad("id", "must be 1 to 128 bytes");
        }
        Ok(())
    }
}

impl Job {
    /// The sum of its succeeded payments (a refunded one no longer counts).
    pub fn paid_cents(&self) -> i64 {
        self.payments
            .iter()
            .filter(|p| p.status == PaymentStatus::Succeeded)
            .map(|p| p.amount_cents)
            .sum()
    }
}

/// Checks and applies `JobRated` and `PaymentRecorded` (job events that
/// do not move the job's status).
pub(crate) fn apply(t: &mut JobTable, kind: &EventKind) -> Result<(), EngineError> {
    match kind {
        EventKind::JobRated { job_id, rating } => {
            let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
            let job = t.jobs.get_mut(&seq).expect("indexed job");
            if job.status != JobStatus::Completed {
                return Err(EngineError::InvalidTransition {
                    from: job.status,
                    step: crate::job::Step::Complete,
                });
            }
            if job.rating.is_some() {
                return Err(EngineError::AlreadyRated);
            }
            if !(1..=5).contains(&rating.stars) {
                return Err(EngineError::InvalidInput {
                    field: "stars",
                    reason: "must be an integer 1 to 5",
                });
            }
            job.rating = Some(rating.clone());
            job.version += 1;
            Ok(())
        }
        EventKind::PaymentRecorded { job_id, payment } => {
            payment.validate()?;
            // The command checked the ref's owner, the direction and the
            // amount (record_payment); a log from before those rules
            // replays as it was written.
            let seq = *t.ids.get(job_id).ok_or(EngineError::JobNotFound)?;
            let job = t.jobs.get_mut(&seq).expect("indexed job");
            match job
                .payments
                .iter_mut()
                .find(|p| p.provider_ref == payment.provider_ref)
            {
                Some(p) => *p = payment.clone(),
                None => {
                    if job.payments.len() >= MAX_PAYMENTS {
                        return Err(EngineError::Conflict("too many payments for this job"));
                    }
                    job.payments.push(payment.clone());
                    t.payment_refs
                        .insert(payment.provider_ref.clone(), job_id.clone());
                }
            }
            job.version += 1;
            Ok(())
        }
        _ => Ok(()),
    }
}

const REF_TAKEN: EngineError = EngineError::Conflict("this provider_ref belongs to another job");
const AMOUNT_FIXED: EngineError =
    EngineError::Conflict("amount_cents is fixed by the payment's first call");

/// What a payment command did: the job after it, and whether the
/// payment is new (201) or an update of the same `provider_ref` (200).
/// A call that changes nothing (its `webhook-id` seen before, or the
/// payment's current status again) has no events.
pub struct PaymentReceipt {
    pub receipt: JobReceipt,
    pub payment: Payment,
    pub created: bool,
}

impl Engine {
    /// Brings an archived (finished) job back into memory if it is not
    /// here, so a rating or payment can change it.
    fn bring_back(
        &self,
        t: &mut JobTable,
        out: &mut Vec<crate::Event>,
        id: &JobId,
        archived: Option<Job>,
        now: Millis,
    ) -> Result<u64, EngineError> {
        if !t.ids.contains_key(id) {
            let job = archived
                .filter(|j| &j.id == id && j.finished_at().is_some())
                .ok_or(EngineError::JobNotFound)?;
            self.emit(t, out, now, EventKind::JobRestored { job: Box::new(job) })?;
        }
        t.ids.get(id).copied().ok_or(EngineError::JobNotFound)
    }

    /// `POST /v1/jobs/{id}/rating`: its resident, once completed, once.
    pub fn rate(
        &self,
        id: &JobId,
        resident: &ResidentId,
        stars: u8,
        comment: Option<String>,
        archived: Option<Job>,
        now: Millis,
    ) -> Result<JobReceipt, EngineError> {
        if comment
            .as_ref()
            .is_some_and(|c| c.len() > MAX_COMMENT_BYTES)
        {
            return Err(EngineError::InvalidInput {
                field: "comment",
                reason: "must be at most 1000 bytes",
            });
        }
        let mut t = self.jobs.lock();
        if let Some(s) = t.ids.get(id) {
            if &t.jobs[s].resident_id != resident {
                return Err(EngineError::JobNotFound);
            }
        } else if archived.as_ref().is_none_or(|j| &j.resident_id != resident) {
            return Err(EngineError::JobNotFound);
        }
        let mut out = Vec::new();
        let seq = self.bring_back(&mut t, &mut out, id, archived, now)?;
        let kind = EventKind::JobRated {
            job_id: id.clone(),
            rating: Rating {
                stars,
                comment,
                at: now,
            },
        };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(JobReceipt {
            events: out,
            job: t.jobs[&seq].clone(),
        })
    }

    /// `POST /v1/payments`: a new payment, or the same `provider_ref`
    /// again moving its status forward (API.md v1.2). A call whose
    /// `webhook_id` this payment has seen, or that repeats its current
    /// status and amount, changes nothing; a move backwards is
    /// [`EngineError::PaymentTransition`]; another amount, or a ref that
    /// belongs to another job, is a conflict.
    pub fn record_payment(
        &self,
        mut payment: Payment,
        webhook_id: Option<String>,
        archived: Option<Job>,
        now: Millis,
    ) -> Result<PaymentReceipt, EngineError> {
        payment.validate()?;
        if webhook_id
            .as_ref()
            .is_some_and(|w| w.is_empty() || w.len() > MAX_WEBHOOK_ID_BYTES)
        {
            return Err(EngineError::InvalidInput {
                field: "webhook-id",
                reason: "must be 1 to 256 bytes",
            });
        }
        let mut t = self.jobs.lock();
        let id = payment.job_id.clone();
        if t.payment_refs
            .get(&payment.provider_ref)
            .is_some_and(|owner| *owner != id)
        {
            return Err(REF_TAKEN);
        }
        let mut out = Vec::new();
        let seq = self.bring_back(&mut t, &mut out, &id, archived, now)?;
        let existing = t.jobs[&seq]
            .payments
            .iter()
            .find(|p| p.provider_ref == payment.provider_ref)
            .cloned();
        let call = PaymentCall {
            status: payment.status,
            amount_cents: payment.amount_cents,
            webhook_id: webhook_id.clone(),
            at: now,
        };
        let created = existing.is_none();
        match existing {
            Some(old) => {
                let seen =
                    webhook_id.is_some() && old.calls.iter().any(|c| c.webhook_id == webhook_id);
                let same = old.status == payment.status && old.amount_cents == payment.amount_cents;
                if seen || same {
                    return Ok(PaymentReceipt {
                        receipt: JobReceipt {
                            events: out,
                            job: t.jobs[&seq].clone(),
                        },
                        payment: old,
                        created: false,
                    });
                }
                if !old.status.may_become(payment.status) {
                    return Err(EngineError::PaymentTransition {
                        from: old.status.as_str(),
                        to: payment.status.as_str(),
                    });
                }
                if old.amount_cents != payment.amount_cents {
                    return Err(AMOUNT_FIXED);
                }
                payment.id = old.id;
                payment.created_at = old.created_at;
                payment.calls = old.calls;
            }
            None => payment.calls.clear(),
        }
        payment.calls.push(call);
        payment.updated_at = now;
        let kind = EventKind::PaymentRecorded {
            job_id: id,
            payment: payment.clone(),
        };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(PaymentReceipt {
            receipt: JobReceipt {
                events: out,
                job: t.jobs[&seq].clone(),
            },
            payment,
            created,
        })
    }
}
