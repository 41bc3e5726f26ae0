//! The stock domain's values: parts, locations, movements, balances,
//! reorder tasks and reservations, with the checks of their own shape.

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::types::{JobId, Millis, WorkerId};

pub const MAX_SKU_BYTES: usize = 64;
pub const MAX_NAME_BYTES: usize = 200;
pub const MAX_FITS: usize = 50;
pub const MAX_PARTS: usize = 100_000;
/// Largest quantity in one movement or line.
pub const MAX_QTY: i64 = 1_000_000;
/// Most lines a job may list.
pub const MAX_LINES: usize = 20;

/// A part in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub fits: Vec<String>,
    pub unit_cost_cents: i64,
    pub supplier: String,
    pub reorder_point: i64,
    pub reorder_qty: i64,
    pub created_at: Millis,
}

impl Part {
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if self.id.is_empty() || self.id.len() > 64 {
            return bad("id", "must be 1 to 64 bytes");
        }
        if self.sku.trim().is_empty() || self.sku.len() > MAX_SKU_BYTES {
            return bad("sku", "must be 1 to 64 bytes");
        }
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return bad("name", "must be 1 to 200 bytes");
        }
        if self.fits.len() > MAX_FITS || self.fits.iter().any(|f| f.is_empty() || f.len() > 100) {
            return bad("fits", "at most 50 models of 1 to 100 bytes");
        }
        if self.supplier.len() > MAX_NAME_BYTES {
            return bad("supplier", "must be at most 200 bytes");
        }
        if !(0..=100_000_000).contains(&self.unit_cost_cents) {
            return bad("unit_cost_cents", "must be 0 to 100000000");
        }
        if !(0..=MAX_QTY).contains(&self.reorder_point) {
            return bad("reorder_point", "must be 0 to 1000000");
        }
        if !(1..=MAX_QTY).contains(&self.reorder_qty) {
            return bad("reorder_qty", "must be 1 to 1000000");
        }
        Ok(())
    }
}

/// `depot:<name>` or `van:<worker id>`.
pub fn check_location(field: &'static str, loc: &str) -> Result<(), EngineError> {
    let ok = match loc.split_once(':') {
        Some(("depot", name)) => !name.is_empty() && name.len() <= 64,
        Some(("van", w)) => !w.is_empty() && w.len() <= 128,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidInput {
            field,
            reason: "must be depot:<name> or van:<worker id>",
        })
    }
}

/// The van of `w`.
pub fn van(w: &WorkerId) -> String {
    format!("van:{}", w.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    Receive,
    Transfer,
    Consume,
    Return,
    Adjust,
}

impl MoveKind {
    pub fn parse(s: &str) -> Option<MoveKind> {
        Some(match s {
            "receive" => MoveKind::Receive,
            "transfer" => MoveKind::Transfer,
            "consume" => MoveKind::Consume,
            "return" => MoveKind::Return,
            "adjust" => MoveKind::Adjust,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Receive => "receive",
            MoveKind::Transfer => "transfer",
            MoveKind::Consume => "consume",
            MoveKind::Return => "return",
            MoveKind::Adjust => "adjust",
        }
    }
}

/// One change of stock. Never changed or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    pub id: String,
    pub part_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub qty: i64,
    pub kind: MoveKind,
    pub job_id: Option<JobId>,
    pub by: String,
    pub at: Millis,
    pub note: String,
    /// What `from` had available right after (for stockout analytics);
    /// set by the engine.
    #[serde(default)]
    pub from_available_after: Option<i64>,
}

impl Movement {
    /// The checks of its shape (the state's are in [`StockState::check`]).
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |field, reason| Err(EngineError::InvalidInput { field, reason });
        if self.id.is_empty() || self.id.len() > 200 {
            return bad("id", "must be 1 to 200 bytes");
        }
        if !(1..=MAX_QTY).contains(&self.qty) {
            return bad("qty", "must be an integer 1 to 1000000");
        }
        if self.note.len() > 1000 {
            return bad("note", "must be at most 1000 bytes");
        }
        if let Some(f) = &self.from {
            check_location("from", f)?;
        }
        if let Some(t) = &self.to {
            check_location("to", t)?;
        }
        let (from, to) = (self.from.is_some(), self.to.is_some());
        let shape = match self.kind {
            MoveKind::Receive => !from && to,
            MoveKind::Consume => from && !to,
            MoveKind::Transfer | MoveKind::Return => from && to,
            MoveKind::Adjust => from != to,
        };
        if !shape {
            return bad(
                "kind",
                "receive has only to, consume only from, transfer and return both, adjust one",
            );
        }
        if from && self.from == self.to {
            return bad("to", "must differ from from");
        }
        Ok(())
    }
}

/// A line of a job that needs parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartLine {
    pub part_id: String,
    pub qty: i64,
}

/// What a (part, location) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bal {
    pub on_hand: i64,
    pub reserved: i64,
}

impl Bal {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Ordered,
    Received,
    Cancelled,
}

impl TaskStatus {
    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "open" => TaskStatus::Open,
            "ordered" => TaskStatus::Ordered,
            "received" => TaskStatus::Received,
            "cancelled" => TaskStatus::Cancelled,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Ordered => "ordered",
            TaskStatus::Received => "received",
            TaskStatus::Cancelled => "cancelled",
        }
    }
    pub(crate) fn is_open(self) -> bool {
        matches!(self, TaskStatus::Open | TaskStatus::Ordered)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReorderTask {
    pub id: String,
    pub part_id: String,
    pub location: String,
    pub qty: i64,
    pub status: TaskStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Parts held for an accepted job, in its worker's van.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub location: String,
    pub lines: Vec<PartLine>,
}
