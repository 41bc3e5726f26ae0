//! Notifications beyond the socket (API.md v1.1) — the gateway's side:
//! Standard Webhooks signing ([`sign`]) and the guard against requests to
//! internal addresses ([`target`]). The retry schedule and the outbox
//! records are the engine's (`engine::notify`).

pub mod sign;
pub mod target;
