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
//! * `engine` — [`Engine`]: state, the event sink, worker updates, `tick`.
//! * `matching` — offering a job to its nearest matchable worker, and a
//!   freed worker the most urgent waiting job.
//! * `job_index` — a job put into or taken out of every index.
//! * `jobs` — job commands with their receipts; archive and restore.
//! * [`command`] — every change as a value ([`Op`]) and its one `apply`.
//! * `apply` — the event applier, shared by commands and replay.
//! * `queries` — read-only views: jobs for a viewer, workers, nearby, stats.
//! * [`snapshot`] — export, restore and replay.
//! * [`notify`] — notification preferences, webhook endpoints, and the
//!   notifications job events raise (a domain in its own folder).
//! * [`property`] — properties, and jobs placed at one.
//! * [`maintenance`] — maintenance programmes: so far their calendar
//!   ([`maintenance::recurrence`], `jiff` with its bundled tz database).
//! * [`config`] — [`EngineConfig`].
//! * [`error`] — [`EngineError`].

mod apply;
pub mod attachment;
pub mod command;
pub mod config;
mod engine;
pub mod error;
pub mod event;
pub mod geo;
mod index;
pub mod job;
mod job_index;
pub mod jobs;
pub mod maintenance;
mod matching;
pub mod notify;
pub mod payment;
pub mod property;
mod queries;
pub mod snapshot;
pub mod stock;
mod tracking;
pub mod triage;
pub mod types;
mod worker;

pub use command::{Applied, Holders, Op, WorkerStep, LOCAL_NODE};
pub use config::{ConfigError, EngineConfig, IndexConfig};
pub use engine::{Engine, EventSink, JobReceipt, NewJob, WorkerHandle, MAX_DESCRIPTION_BYTES};
pub use error::EngineError;
pub use event::{Event, EventKind, RevokeReason, Tracked};
pub use job::{Billing, Job, JobStatus, Pass, Step};
pub use maintenance::{Log, LogQuery, Schedule};
pub use notify::{Channel, Delivery, Notice, NoticeData, NotifyPrefs, Webhook};
pub use property::Property;
pub use queries::{
    merge_history, FleetState, FleetWorker, JobQuery, NearbyWorker, Stats, Viewer, WorkerView,
};
pub use snapshot::{PositionSnapshot, Snapshot, WorkerSnapshot};
pub use types::{JobId, Millis, ResidentId, Skill, WorkerId};
