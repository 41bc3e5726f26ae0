//! # loadtest
//!
//! Plays a fleet of workers and residents against a running dispatchd over
//! real sockets, measures what apps would feel, and runs the same workload
//! against a Redis-GEO baseline for comparison. Loopback only.
//!
//! ## Layout
//! * [`opts`] — scenarios (`city`, `rush`, `connections`, `soak`) and knobs.
//! * [`sim`] — simulated workers and residents, token minting, job creation.
//! * [`check`] — every server message checked against API.md.
//! * [`stats`] — HdrHistogram latencies, counters, per-job tracking, /proc samples.
//! * [`net`] — open-files limit, source addresses, small-buffer WebSockets.
//! * [`target`] — the server under test (started here or already running).
//! * [`run`] — ramp, run, drain, saturate, stop; the [`run::Report`].
//! * [`chaos`] — the crash loop (`--chaos-kill-every-s`) and its audit.
//! * [`baseline`] — the Redis-GEO baseline.
//! * [`report`] — the printed summary.

pub mod baseline;
pub mod chaos;
pub mod check;
pub mod net;
pub mod opts;
pub mod report;
pub mod run;
pub mod sim;
pub mod stats;
pub mod target;
