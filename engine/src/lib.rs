//! # dispatchd engine
//!
//! The in-memory geo core of dispatchd: where every worker is, who is
//! matchable, which job goes to whom, and what it costs. Pure: no async
//! runtime, no I/O, no clock — every command takes the caller's `now` and
//! returns the [`Event`]s it caused.
//!
//! ## Layout
//! * [`geo`] — validated coordinates, unit vectors, great-circle distances.
//! * [`types`] — ids, [`Millis`], [`Skill`].
//! * `worker` — a worker's shared state word (connected / available /
//!   reserved) and its seqlocked position.
//! * `index` — H3 buckets at two resolutions and the exact ring search.
//! * [`job`] — [`Job`], [`JobStatus`], the one transition function
//!   [`job::next`], and [`Billing`].
//! * [`event`] — [`Event`]: the record of every change.
//! * `engine` — [`Engine`]: commands, the event applier, queries.
//! * [`snapshot`] — export, restore and replay.
//! * [`config`] — [`EngineConfig`].
//! * [`error`] — [`EngineError`].

pub mod config;
mod engine;
pub mod error;
pub mod event;
pub mod geo;
mod index;
pub mod job;
pub mod snapshot;
pub mod types;
mod worker;

pub use config::{ConfigError, EngineConfig, IndexConfig};
pub use engine::{Engine, JobQuery, NearbyWorker, NewJob, Stats, Viewer, WorkerHandle, WorkerView};
pub use error::EngineError;
pub use event::{Event, EventKind, RevokeReason};
pub use job::{Billing, Job, JobStatus, Pass, Step};
pub use snapshot::{PositionSnapshot, Snapshot, WorkerSnapshot};
pub use types::{JobId, Millis, ResidentId, Skill, WorkerId};
