//! Configuration: one typed struct read from `config.toml`, then overridden
//! key by key from `DISPATCHD_<SECTION>_<KEY>` environment variables.
//! Unknown keys and bad values stop startup with a message naming the key.

mod load;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;

use engine::{Billing, EngineConfig, IndexConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub dispatch: DispatchConfig,
    pub billing: BillingConfig,
    pub index: IndexSection,
    pub limits: LimitsConfig,
    pub websocket: WebSocketConfig,
    pub redis: RedisConfig,
    pub notify: NotifyConfig,
    pub maintenance: MaintenanceConfig,
    pub stock: StockConfig,
    pub triage: TriageConfig,
    pub payments: PaymentsConfig,
    pub attachments: AttachmentsConfig,
    pub tracking: TrackingConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP and WebSocket listener binds.
    pub addr: String,
    /// Longest an HTTP request may take before it is answered 503.
    pub request_timeout_s: u64,
    /// On SIGTERM, how long open sockets get to finish their close handshake.
    pub shutdown_grace_s: u64,
    /// A connection that has not sent complete request headers this long after
    /// it opened (or after the first byte of a later request) is dropped.
    pub header_timeout_s: u64,
    /// A keep-alive connection with no request this long is closed.
    pub idle_timeout_s: u64,
    /// Connections open at once, HTTP and WebSocket together (capped below
    /// the open-files limit at startup).
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory of the event log, snapshots and accounts.
    pub data_dir: PathBuf,
    /// Snapshot after this many logged events (0: never by count).
    pub snapshot_every_events: u64,
    /// Snapshot at least this often while events arrive, seconds.
    pub snapshot_every_s: u64,
    /// Snapshot files kept.
    pub keep_snapshots: usize,
    /// A job completed, cancelled or unmatched this long ago leaves memory
    /// (and snapshots) for the on-disk archive; reads find it there.
    pub keep_finished_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 secret for every token. Change it in production.
    pub jwt_secret: String,
    /// Lifetime of tokens issued by login, seconds.
    pub token_ttl_s: u64,
    /// Argon2id memory cost (KiB) for new password hashes.
    pub argon2_memory_kib: u32,
    /// Argon2id passes for new password hashes.
    pub argon2_iterations: u32,
    /// Password hashes computed at once (0: one per core); each holds
    /// `argon2_memory_kib` for the life of the process.
    pub max_concurrent_hashes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    pub offer_timeout_s: u64,
    pub search_timeout_s: u64,
    pub max_radius_m: f64,
    pub stale_after_s: u64,
    pub rematch_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    pub cents_per_increment: i64,
    pub increment_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSection {
    pub fine_res: u8,
    pub coarse_res: u8,
    pub fine_rings: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per user per minute, HTTP and WebSocket messages together
    /// (location updates excepted, see below).
    pub requests_per_minute: u32,
    /// Location updates per user per minute (WebSocket or HTTP); their own,
    /// larger budget so that streaming positions never starves job actions.
    pub locations_per_minute: u32,
    /// Register and login calls per client address per minute (they hash
    /// passwords, so they are the expensive unauthenticated requests).
    pub auth_per_minute: u32,
    /// Largest request body or WebSocket message, bytes.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Server pings this often; a peer silent for two intervals is dropped.
    pub ping_interval_s: u64,
    /// Messages queued for one client before it counts as not reading and is closed.
    pub outbound_queue: usize,
    /// tungstenite's read buffer per connection (its default, 128 KiB, would
    /// dominate the memory of an idle connection).
    pub read_buffer_bytes: usize,
    /// Bytes buffered before a write is flushed to the socket.
    pub write_buffer_bytes: usize,
    /// Most bytes a connection may have unsent before it is closed.
    pub max_write_buffer_bytes: usize,
    /// How far back `?since=N` can resume (seconds of messages kept per user).
    pub resume_window_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Absent: a single node with no Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Cluster: the timer-lease holder writes a shared snapshot and trims
    /// the command stream after this many commands.
    pub snapshot_every: u64,
}

/// Notifications beyond the socket (API.md): e-mail, SMS, webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// SMTP server for e-mail, e.g. `smtp://mail.example.com:587?tls=required`
    /// or `smtps://user:pass@host` (empty: e-mail is skipped and counted).
    pub smtp_url: String,
    /// The sender of notification e-mails.
    pub email_from: String,
    /// An HTTP SMS provider that receives `POST {to, body}` (empty: SMS is
    /// skipped and counted).
    pub sms_url: String,
    /// Allow webhook targets on loopback and private networks (off: 400 at
    /// registration, refused again at delivery).
    pub allow_private_targets: bool,
    /// Deliveries in flight at once.
    pub max_in_flight: usize,
    /// One attempt's time limit, seconds.
    pub timeout_s: u64,
    /// Delivered and failed entries are kept this long, then pruned.
    pub keep_delivered_s: u64,
    /// The waits between attempts, comma-separated seconds (empty: the
    /// contract's 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h).
    pub retry_delays_s: String,
}

impl NotifyConfig {
    /// The retry schedule: the configured one, or the contract's.
    pub fn delays(&self) -> Vec<std::time::Duration> {
        validate::parse_delays(&self.retry_delays_s)
            .unwrap_or_else(|| engine::notify::schedule::DELAYS.to_vec())
    }
}

/// Maintenance programmes (API.md): the due window and the daily check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// A schedule is `due` this long before its due date, seconds.
    pub due_window_s: u64,
    /// When the daily due/overdue check runs, `"HH:MM"` UTC.
    pub check_at_utc: String,
}

impl MaintenanceConfig {
    /// `check_at_utc` as minutes after midnight.
    pub fn check_minute(&self) -> u32 {
        validate::parse_hhmm(&self.check_at_utc).unwrap_or(6 * 60)
    }
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            due_window_s: 86_400,
            check_at_utc: "06:00".into(),
        }
    }
}

/// Payments (API.md "Payments").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// `whsec_…`: the payment provider signs `POST /v1/payments` with it
    /// (Standard Webhooks). Empty: only ops may record payments.
    pub webhook_secret: String,
}

/// Attachments (API.md "Intake").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentsConfig {
    /// Largest upload, bytes (it, not `[limits] max_body_bytes`, governs
    /// `POST /v1/attachments`); a larger one is refused 413 unread.
    pub max_bytes: u64,
    /// The most one user may keep stored (each distinct file counted
    /// once); an upload past it is refused 413 `quota_exceeded`.
    pub quota_bytes_per_user: u64,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            max_bytes: 10 * 1024 * 1024,
            quota_bytes_per_user: 1 << 30,
        }
    }
}

/// Tracking the engineer on the way (API.md v1.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// At most one `tracking` message per accepted job this often, seconds.
    pub every_s: u64,
    /// The speed `eta_s` assumes over the great-circle distance, m/s.
    pub speed_mps: f64,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            every_s: 2,
            speed_mps: 8.3,
        }
    }
}

impl TrackingConfig {
    /// Seconds to cover `distance_m` at `speed_mps`, rounded up.
    pub fn eta_s(&self, distance_m: f64) -> u64 {
        (distance_m.max(0.0) / self.speed_mps).ceil() as u64
    }
}

/// Triage (API.md "Intake").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriageConfig {
    /// A job without a skill whose triage is less sure than this is
    /// refused (422 `triage_uncertain`).
    pub min_confidence: f64,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            min_confidence: 0.5,
        }
    }
}

/// Parts and stock (API.md): the periodic reorder check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StockConfig {
    /// Seconds between reorder checks over every stocked location (each
    /// movement that lowers stock checks its own location at once).
    pub check_every_s: u64,
}

impl Default for StockConfig {
    fn default() -> Self {
        StockConfig {
            check_every_s: 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// error | warn | info | debug | trace
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:8080".into(),
            request_timeout_s: 30,
            shutdown_grace_s: 10,
            header_timeout_s: 10,
            idle_timeout_s: 60,
            max_connections: 50_000,
            max_connections_per_ip: 1_000,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            snapshot_every_events: 100_000,
            snapshot_every_s: 300,
            keep_snapshots: 2,
            keep_finished_s: 3600,
        }
    }
}

/// The shipped secret; startup warns while it is in use.
pub const DEFAULT_SECRET: &str = "change-me-dispatchd-dev-secret";

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: DEFAULT_SECRET.into(),
            token_ttl_s: 86_400,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            max_concurrent_hashes: 0,
        }
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        let e = EngineConfig::default();
        DispatchConfig {
            offer_timeout_s: e.offer_timeout_s,
            search_timeout_s: e.search_timeout_s,
            max_radius_m: e.max_radius_m,
            stale_after_s: e.stale_after_s,
            rematch_interval_ms: e.rematch_interval_ms,
        }
    }
}

impl Default for BillingConfig {
    fn default() -> Self {
        let b = Billing::default();
        BillingConfig {
            cents_per_increment: b.cents_per_increment,
            increment_s: b.increment_s,
        }
    }
}

impl Default for IndexSection {
    fn default() -> Self {
        let i = IndexConfig::default();
        IndexSection {
            fine_res: i.fine_res,
            coarse_res: i.coarse_res,
            fine_rings: i.fine_rings,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            requests_per_minute: 600,
            locations_per_minute: 1200,
            auth_per_minute: 600,
            max_body_bytes: 65_536,
        }
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            ping_interval_s: 20,
            outbound_queue: 256,
            read_buffer_bytes: 4096,
            write_buffer_bytes: 0,
            max_write_buffer_bytes: 262_144,
            resume_window_s: 300,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            snapshot_every: 50_000,
        }
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: String::new(),
            email_from: "dispatchd <dispatchd@localhost>".into(),
            sms_url: String::new(),
            allow_private_targets: false,
            max_in_flight: 16,
            timeout_s: 15,
            keep_delivered_s: 7 * 86_400,
            retry_delays_s: String::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// Why the configuration was refused; always names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Parse(String),
    #[error("config key {key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// The engine's settings, field for field.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            offer_timeout_s: self.dispatch.offer_timeout_s,
            search_timeout_s: self.dispatch.search_timeout_s,
            max_radius_m: self.dispatch.max_radius_m,
            stale_after_s: self.dispatch.stale_after_s,
            rematch_interval_ms: self.dispatch.rematch_interval_ms,
            due_window_s: self.maintenance.due_window_s,
            tracking_every_s: self.tracking.every_s,
            billing: Billing {
                cents_per_increment: self.billing.cents_per_increment,
                increment_s: self.billing.increment_s,
            },
            index: IndexConfig {
                fine_res: self.index.fine_res,
                coarse_res: self.index.coarse_res,
                fine_rings: self.index.fine_rings,
            },
            ..EngineConfig::default()
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr.parse().expect("validated")
    }
}

#[cfg(test)]
mod tests;
