//! The engine's settings: plain values, no files. The gateway fills them from
//! its own configuration.

use serde::{Deserialize, Serialize};

use crate::job::Billing;

/// Largest dispatch radius accepted: beyond it a ring search stops being cheap
/// and a "nearest" worker stops being a sensible dispatch.
pub const MAX_RADIUS_LIMIT_M: f64 = 500_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Seconds a worker has to answer an offer.
    pub offer_timeout_s: u64,
    /// Seconds a job may go without acceptance before it is dead-lettered.
    pub search_timeout_s: u64,
    /// Farthest a matched worker may be, metres.
    pub max_radius_m: f64,
    /// A position older than this does not make a worker matchable.
    pub stale_after_s: u64,
    pub billing: Billing,
    pub index: IndexConfig,
    /// How often a waiting job is searched again on `tick`, for workers that
    /// came into range without any other event noticing.
    pub rematch_interval_ms: u64,
    /// A maintenance schedule is `due` this long before its due date.
    #[serde(default = "default_due_window_s")]
    pub due_window_s: u64,
    /// A job that needs a part held in at most this many vans is matched
    /// by measuring the distance to each of them (exact, and cheaper than
    /// a ring search that must go far to meet a rare part); above it, by
    /// the ring search with the van as a candidate filter.
    #[serde(default = "default_parts_scan_max")]
    pub parts_scan_max: usize,
    /// …and in at most one van in this many of the fleet.
    #[serde(default = "default_parts_scan_ratio")]
    pub parts_scan_ratio: usize,
    /// At most one `WorkerTracked` per accepted job this often (API.md
    /// "Tracking the engineer on the way", `[tracking] every_s`).
    #[serde(default = "default_tracking_every_s")]
    pub tracking_every_s: u64,
}

fn default_tracking_every_s() -> u64 {
    2
}

fn default_parts_scan_ratio() -> usize {
    50
}

fn default_parts_scan_max() -> usize {
    2048
}

fn default_due_window_s() -> u64 {
    86_400
}

/// H3 resolutions of the spatial index (see `index.rs`; chosen by the
/// `match` benchmarks in BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexConfig {
    pub fine_res: u8,
    pub coarse_res: u8,
    /// Rings searched at the fine level before moving to the coarse one.
    pub fine_rings: u32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            fine_res: 8,
            coarse_res: 5,
            fine_rings: 3,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            offer_timeout_s: 15,
            search_timeout_s: 120,
            max_radius_m: 20_000.0,
            stale_after_s: 30,
            billing: Billing::default(),
            index: IndexConfig::default(),
            rematch_interval_ms: 1000,
            due_window_s: default_due_window_s(),
            parts_scan_max: default_parts_scan_max(),
            parts_scan_ratio: default_parts_scan_ratio(),
            tracking_every_s: default_tracking_every_s(),
        }
    }
}

/// A setting out of range; `key` is its name in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: &'static str,
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason| Err(ConfigError { key, reason });
        if self.offer_timeout_s == 0 {
            return err("offer_timeout_s", "must be at least 1");
        }
        if self.search_timeout_s == 0 {
            return err("search_timeout_s", "must be at least 1");
        }
        if !(self.max_radius_m.is_finite()
            && self.max_radius_m > 0.0
            && self.max_radius_m <= MAX_RADIUS_LIMIT_M)
        {
            return err("max_radius_m", "must be in (0, 500000]");
        }
        if self.stale_after_s == 0 {
            return err("stale_after_s", "must be at least 1");
        }
        if !(1..=3600).contains(&self.tracking_every_s) {
            return err("every_s", "must be in 1..=3600");
        }
        if self.billing.increment_s == 0 {
            return err("increment_s", "must be at least 1");
        }
        if self.billing.cents_per_increment < 0 {
            return err("cents_per_increment", "must not be negative");
        }
        let i = &self.index;
        if !(1..=12).contains(&i.fine_res) {
            return err("fine_res", "must be in 1..=12");
        }
        if i.coarse_res >= i.fine_res {
            return err("coarse_res", "must be coarser (smaller) than fine_res");
        }
        if !(1..=16).contains(&i.fine_rings) {
            return err("fine_rings", "must be in 1..=16");
        }
        Ok(())
    }
}
