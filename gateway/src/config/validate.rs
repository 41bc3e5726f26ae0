//! Every check the types alone do not make; each refusal names its key.

use std::net::SocketAddr;

use super::{invalid, Config, ConfigError};

impl Config {
    /// Checks every value the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .addr
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.addr", "must be IP:PORT"))?;
        if self.server.request_timeout_s == 0 {
            return Err(invalid("server.request_timeout_s", "must be at least 1"));
        }
        if self.server.header_timeout_s == 0 {
            return Err(invalid("server.header_timeout_s", "must be at least 1"));
        }
        if self.server.idle_timeout_s == 0 {
            return Err(invalid("server.idle_timeout_s", "must be at least 1"));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if self.server.max_connections_per_ip == 0 {
            return Err(invalid(
                "server.max_connections_per_ip",
                "must be at least 1",
            ));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if self.storage.keep_snapshots == 0 {
            return Err(invalid("storage.keep_snapshots", "must be at least 1"));
        }
        if self.auth.jwt_secret.len() < 16 {
            return Err(invalid("auth.jwt_secret", "must be at least 16 bytes"));
        }
        if self.auth.token_ttl_s == 0 {
            return Err(invalid("auth.token_ttl_s", "must be at least 1"));
        }
        argon2::Params::new(
            self.auth.argon2_memory_kib,
            self.auth.argon2_iterations,
            1,
            None,
        )
        .map_err(|e| invalid("auth.argon2_memory_kib", e.to_string()))?;
        if self.limits.requests_per_minute == 0 {
            return Err(invalid("limits.requests_per_minute", "must be at least 1"));
        }
        if self.limits.locations_per_minute == 0 {
            return Err(invalid("limits.locations_per_minute", "must be at least 1"));
        }
        if self.limits.auth_per_minute == 0 {
            return Err(invalid("limits.auth_per_minute", "must be at least 1"));
        }
        if self.limits.max_body_bytes < 256 {
            return Err(invalid("limits.max_body_bytes", "must be at least 256"));
        }
        if self.websocket.ping_interval_s == 0 {
            return Err(invalid("websocket.ping_interval_s", "must be at least 1"));
        }
        if self.websocket.outbound_queue == 0 {
            return Err(invalid("websocket.outbound_queue", "must be at least 1"));
        }
        if self.websocket.read_buffer_bytes < 512 {
            return Err(invalid(
                "websocket.read_buffer_bytes",
                "must be at least 512",
            ));
        }
        if self.websocket.max_write_buffer_bytes <= self.websocket.write_buffer_bytes {
            return Err(invalid(
                "websocket.max_write_buffer_bytes",
                "must be larger than write_buffer_bytes",
            ));
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(invalid(
                "log.level",
                "must be error, warn, info, debug or trace",
            ));
        }
        if self.redis.snapshot_every == 0 {
            return Err(invalid("redis.snapshot_every", "must be at least 1"));
        }
        if let Some(url) = &self.redis.url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(invalid("redis.url", "must start with redis://"));
            }
        }
        let n = &self.notify;
        let smtp_ok = n.smtp_url.is_empty()
            || n.smtp_url.starts_with("smtp://")
            || n.smtp_url.starts_with("smtps://");
        if !smtp_ok {
            return Err(invalid(
                "notify.smtp_url",
                "must start with smtp:// or smtps://",
            ));
        }
        if n.email_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "notify.email_from",
                "must be an e-mail address (\"Name <a@b>\" or a@b)",
            ));
        }
        if !n.sms_url.is_empty() && crate::notify::target::parse(&n.sms_url).is_err() {
            return Err(invalid("notify.sms_url", "must be an http(s) URL"));
        }
        if n.max_in_flight == 0 {
            return Err(invalid("notify.max_in_flight", "must be at least 1"));
        }
        if n.timeout_s == 0 {
            return Err(invalid("notify.timeout_s", "must be at least 1"));
        }
        if !n.retry_delays_s.trim().is_empty() && parse_delays(&n.retry_delays_s).is_none() {
            return Err(invalid(
                "notify.retry_delays_s",
                "must be comma-separated seconds, each above 0 and at most a week",
            ));
        }
        if self.maintenance.due_window_s > 366 * 86_400 {
            return Err(invalid(
                "maintenance.due_window_s",
                "must be at most a year (31622400)",
            ));
        }
        if !self.payments.webhook_secret.is_empty()
            && crate::notify::sign::Secret::parse(&self.payments.webhook_secret).is_none()
        {
            return Err(invalid(
                "payments.webhook_secret",
                "must be whsec_ followed by base64 of 24 to 64 bytes",
            ));
        }
        if !(1024..=1 << 40).contains(&self.attachments.max_bytes) {
            return Err(invalid(
                "attachments.max_bytes",
                "must be 1024 to 1099511627776 (1 TiB)",
            ));
        }
        if !(1..=3600).contains(&self.tracking.every_s) {
            return Err(invalid("tracking.every_s", "must be 1 to 3600"));
        }
        if !(self.tracking.speed_mps.is_finite()
            && (0.1..=1000.0).contains(&self.tracking.speed_mps))
        {
            return Err(invalid("tracking.speed_mps", "must be 0.1 to 1000"));
        }
        if !(0.0..=1.0).contains(&self.triage.min_confidence) {
            return Err(invalid("triage.min_confidence", "must be 0 to 1"));
        }
        if !(1..=7 * 86_400).contains(&self.stock.check_every_s) {
            return Err(invalid(
                "stock.check_every_s",
                "must be 1 to 604800 (a week)",
            ));
        }
        if parse_hhmm(&self.maintenance.check_at_utc).is_none() {
            return Err(invalid(
                "maintenance.check_at_utc",
                "must be \"HH:MM\" (00:00 to 23:59, UTC)",
            ));
        }
        self.engine()
            .validate()
            .map_err(|e| invalid(&engine_key(e.key), e.reason))?;
        Ok(())
    }
}

/// The engine names its keys by field; say which section they live in.
fn engine_key(key: &str) -> String {
    let section = match key {
        "cents_per_increment" | "increment_s" => "billing",
        "fine_res" | "coarse_res" | "fine_rings" => "index",
        k if k.starts_with("billing.") || k.starts_with("index.") => return k.to_string(),
        _ => "dispatch",
    };
    format!("{section}.{key}")
}

pub(super) fn parse_delays(s: &str) -> Option<Vec<std::time::Duration>> {
    if s.trim().is_empty() {
        return None;
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0 && *v <= 7.0 * 86_400.0)
                .map(std::time::Duration::from_secs_f64)
        })
        .collect()
}

/// `"HH:MM"` (24-hour) as minutes after midnight.
pub(super) fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}
