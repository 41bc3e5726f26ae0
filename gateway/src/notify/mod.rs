//! Notifications beyond the socket (API.md v1.1) — the gateway's side:
//! the [`dispatch`]er that takes due deliveries from the backend's outbox,
//! the senders per channel ([`deliver`]), Standard Webhooks signing
//! ([`sign`]) and the guard against requests to internal addresses
//! ([`target`]). Who is notified of what, the retry schedule and the
//! outbox records are the engine's (`engine::notify`); the routes are in
//! `routes/notify.rs`.

pub mod deliver;
pub mod dispatch;
pub mod sign;
pub mod target;
