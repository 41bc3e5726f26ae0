//! # dispatchd gateway
//!
//! The `dispatchd` server: the whole public contract (`API.md`) over HTTP
//! and WebSocket, on the pure [`engine`] and the sled [`persistence`].
//!
//! ## Layout
//! * [`config`] — the typed configuration: file, then `DISPATCHD_*` env.
//! * [`error`] — [`error::ApiError`]: every failure's status and code.
//! * [`auth`] — JWTs, password hashes, the `User` extractor.
//! * [`hasher`] — argon2 on a fixed set of threads with reused memory.
//! * [`clock`] — injected time (`SystemClock`, `ManualClock` for tests).
//! * [`body`] — request bodies (JSON or MessagePack) and query parameters.
//! * [`wire`] — the contract's `Job` and the WebSocket messages.
//! * [`app`] — shared state; the engine and backend once recovered.
//! * [`blobs`] — attachments' bytes on disk, content-addressed.
//! * [`backend`] — the one seam every command goes through: the embedded
//!   sled store, or several nodes over one Redis stream (`[redis] url`).
//! * [`resume`] — per-user backlogs for `?since=` resumes; the open offer.
//! * [`hub`] — which socket gets which event; bounded per-connection queues.
//! * [`ws`] — one WebSocket connection.
//! * [`watch`] — the ops `watch` topics: the fleet map and every job.
//! * [`routes`] — the HTTP handlers.
//! * [`limits`] — per-user rate limits.
//! * [`metrics`] — Prometheus names and handles.
//! * [`timers`] — drives offer and search deadlines.
//! * [`listener`] — accepting connections: caps, header and idle timeouts.
//! * [`server`] — startup, readiness and the shutdown path.

pub mod app;
pub mod auth;
pub mod backend;
pub mod blobs;
pub mod body;
pub mod clock;
pub mod config;
pub mod error;
pub mod hasher;
pub mod hub;
pub mod ics;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod resume;
pub mod resume_log;
pub mod routes;
pub mod server;
pub mod timers;
pub mod watch;
pub mod wire;
pub mod ws;

#[cfg(test)]
mod fuzz;
