//! The engine's errors: all of them are the caller's doing (bad input, a step
//! out of order, an unknown id). The gateway maps each to a status and code.

use crate::job::{JobStatus, Step};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// A field failed validation; `field` is its API name.
    #[error("{field}: {reason}")]
    InvalidInput {
        field: &'static str,
        reason: &'static str,
    },
    #[error("unknown worker")]
    UnknownWorker,
    /// No such job, or the caller may not know it exists.
    #[error("job not found")]
    JobNotFound,
    #[error("a job with this id already exists")]
    DuplicateJob,
    #[error("cannot {step} a job that is {from}")]
    InvalidTransition { from: JobStatus, step: Step },
    /// A payment's status may only move forward (API.md v1.2).
    #[error("a payment that is {from} cannot become {to}")]
    PaymentTransition {
        from: &'static str,
        to: &'static str,
    },
    #[error("the offer for this job expired")]
    OfferExpired,
    /// Another domain's thing (webhook, property …) that does not exist;
    /// the message says which ("webhook not found").
    #[error("{0}")]
    NotFound(&'static str),
    /// The change contradicts the state (an id taken, a limit reached).
    #[error("{0}")]
    Conflict(&'static str),
    /// The job was rated already.
    #[error("this job was rated already")]
    AlreadyRated,
    /// A part with this sku exists.
    #[error("a part with this sku exists")]
    SkuTaken,
    /// A movement or reservation would take available stock below zero.
    #[error("not enough stock available")]
    InsufficientStock,
    /// An upload would take its owner past their storage quota.
    #[error("this upload would exceed your storage quota")]
    QuotaExceeded,
    /// A snapshot or event log that does not describe a reachable state.
    #[error("inconsistent state: {0}")]
    Corrupt(String),
}

impl From<crate::geo::CoordError> for EngineError {
    fn from(e: crate::geo::CoordError) -> EngineError {
        EngineError::InvalidInput {
            field: e.field(),
            reason: "must be a finite number in range",
        }
    }
}
