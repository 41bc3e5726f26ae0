//! Notifications beyond the socket (API.md v1.1) — the parts that do not
//! depend on where the outbox lives: Standard Webhooks signing
//! ([`sign`]), the retry schedule ([`schedule`]) and the guard against
//! requests to internal addresses ([`target`]).

pub mod schedule;
pub mod sign;
pub mod target;
