//! Prometheus metrics: the recorder, the names, and cheap pre-registered
//! handles for the per-message paths (a `counter!` macro call hashes its
//! labels on every use; a held handle is one atomic add).

use std::collections::HashMap;
use std::time::Duration;

use engine::{Event, EventKind};

use crate::wire::{ClientMsg, ServerMsg};
use metrics::{describe_counter, describe_gauge, describe_histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use persistence::Role;

/// Latency buckets, seconds: 10 µs … 30 s.
const BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters by label value; looked up per message, so a fast hash.
type Table = HashMap<&'static str, Counter, ahash::RandomState>;

pub struct Metrics {
    handle: PrometheusHandle,
    msgs_in: Table,
    msgs_out: Table,
    transitions: Table,
    connections: [Gauge; 3],
    pub match_latency: Histogram,
    pub offer_to_accept: Histogram,
    pub append_latency: Histogram,
    pub unmatched: Counter,
    pub slow_disconnects: Counter,
    pub ping_timeouts: Counter,
    pub rate_limited_http: Counter,
    pub rate_limited_ws: Counter,
    pub positions: Counter,
    /// Open TCP connections (HTTP and WebSocket).
    pub connections_open: Gauge,
}

impl Metrics {
    /// Installs the global recorder. Only the first call in a process
    /// installs; later calls (tests) get a detached recorder.
    pub fn install() -> Metrics {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .expect("non-empty buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let installed = metrics::set_global_recorder(recorder).is_ok();
        if !installed {
            tracing::debug!("metrics recorder already installed");
        }
        describe();
        let per = |name: &'static str, label: &'static str, values: &[&'static str]| {
            values
                .iter()
                .map(|v| (*v, metrics::counter!(name, label => *v)))
                .collect::<Table>()
        };
        let conn = |r: Role| metrics::gauge!("dispatchd_ws_connections", "role" => r.as_str());
        Metrics {
            handle,
            msgs_in: per("dispatchd_ws_messages_in_total", "type", &ClientMsg::NAMES),
            msgs_out: per("dispatchd_ws_messages_out_total", "type", &ServerMsg::NAMES),
            transitions: per(
                "dispatchd_job_transitions_total",
                "event",
                &EventKind::NAMES,
            ),
            connections: Role::ALL.map(conn),
            match_latency: metrics::histogram!("dispatchd_match_duration_seconds"),
            offer_to_accept: metrics::histogram!("dispatchd_offer_to_accept_seconds"),
            append_latency: metrics::histogram!("dispatchd_log_append_duration_seconds"),
            unmatched: metrics::counter!("dispatchd_jobs_unmatched_total"),
            slow_disconnects: metrics::counter!("dispatchd_ws_slow_client_disconnects_total"),
            ping_timeouts: metrics::counter!("dispatchd_ws_ping_timeouts_total"),
            rate_limited_http: metrics::counter!("dispatchd_rate_limited_total", "via" => "http"),
            rate_limited_ws: metrics::counter!("dispatchd_rate_limited_total", "via" => "ws"),
            positions: metrics::counter!("dispatchd_position_updates_total"),
            connections_open: metrics::gauge!("dispatchd_connections_open"),
        }
        .registered()
    }

    /// Counters that exist (at 0) before anything happens, so dashboards
    /// and alerts find them.
    fn registered(self) -> Metrics {
        self.maintenance_checked(0, 0, 0);
        metrics::counter!("dispatchd_maintenance_check_failures_total").absolute(0);
        for reason in ["max_connections", "max_connections_per_ip", "accept_error"] {
            metrics::counter!("dispatchd_connections_refused_total", "reason" => reason)
                .absolute(0);
        }
        for reason in ["header", "idle"] {
            metrics::counter!("dispatchd_connections_timed_out_total", "reason" => reason)
                .absolute(0);
        }
        for channel in ["webhook", "email", "sms"] {
            for outcome in ["delivered", "retried", "failed", "skipped"] {
                metrics::counter!("dispatchd_notifications_total", "channel" => channel, "outcome" => outcome)
                    .absolute(0);
            }
        }
        metrics::counter!("dispatchd_attachments_stored_total").absolute(0);
        metrics::counter!("dispatchd_attachment_bytes_total").absolute(0);
        metrics::gauge!("dispatchd_outbox_pending").set(0.0);
        self
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds the histogram samples recorded since the last call into their
    /// buckets. The exporter keeps every raw sample until then: without
    /// this, a server nobody scrapes grows by every sample it ever took
    /// (≈ 0.3 KiB a job — the creep the soak found). Called by the timer
    /// loop every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// A due/overdue check ran: schedules examined, alerts raised by kind.
    pub fn maintenance_checked(&self, checked: u64, due: u64, overdue: u64) {
        metrics::counter!("dispatchd_maintenance_checked_total").increment(checked);
        metrics::counter!("dispatchd_maintenance_alerts_total", "kind" => "due").increment(due);
        metrics::counter!("dispatchd_maintenance_alerts_total", "kind" => "overdue")
            .increment(overdue);
    }

    /// An attachment stored (its bytes counted even when already held).
    pub fn attachment_stored(&self, bytes: u64) {
        metrics::counter!("dispatchd_attachments_stored_total").increment(1);
        metrics::counter!("dispatchd_attachment_bytes_total").increment(bytes);
    }

    /// A due/overdue check that could not run (storage or cluster down).
    pub fn maintenance_check_failed(&self) {
        metrics::counter!("dispatchd_maintenance_check_failures_total").increment(1);
    }

    /// A connection refused at accept (`max_connections`, `max_connections_per_ip`, `accept_error`).
    pub fn conn_refused(&self, reason: &'static str) {
        metrics::counter!("dispatchd_connections_refused_total", "reason" => reason).increment(1);
    }

    /// A connection dropped for not sending its headers (`header`) or idling (`idle`).
    pub fn conn_timed_out(&self, reason: &'static str) {
        metrics::counter!("dispatchd_connections_timed_out_total", "reason" => reason).increment(1);
    }

    pub fn msg_in(&self, t: &str) {
        if let Some(c) = self.msgs_in.get(t) {
            c.increment(1);
        }
    }

    pub fn msg_out(&self, t: &str) {
        if let Some(c) = self.msgs_out.get(t) {
            c.increment(1);
        }
    }

    pub fn connection(&self, role: Role, delta: f64) {
        let g = &self.connections[role as usize];
        if delta >= 0.0 {
            g.increment(delta);
        } else {
            g.decrement(-delta);
        }
    }

    /// Counts the engine's events: one record, this is its metrics consumer.
    pub fn events(&self, events: &[Event]) {
        for e in events {
            if let Some(c) = self.transitions.get(e.kind.name()) {
                c.increment(1);
            }
            if let EventKind::JobUnmatched { .. } = e.kind {
                self.unmatched.increment(1);
            }
        }
    }

    pub fn offer_accepted_after(&self, d: Duration) {
        self.offer_to_accept.record(d.as_secs_f64());
    }

    /// A delivery attempt's outcome (`delivered`, `retried`, `failed`,
    /// `skipped`: its channel is not configured) and how long it took.
    pub fn notification(&self, channel: &'static str, outcome: &'static str, took: Duration) {
        metrics::counter!("dispatchd_notifications_total", "channel" => channel, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("dispatchd_notification_attempt_duration_seconds", "channel" => channel)
            .record(took.as_secs_f64());
    }

    /// Deliveries waiting in the outbox (due or scheduled for a retry).
    pub fn outbox_pending(&self, n: usize) {
        metrics::gauge!("dispatchd_outbox_pending").set(n as f64);
    }
}

fn describe() {
    describe_counter!(
        "dispatchd_attachments_stored_total",
        "Attachments uploaded (POST /v1/attachments answered 201)."
    );
    describe_counter!(
        "dispatchd_attachment_bytes_total",
        "Bytes of the attachments uploaded."
    );
    describe_gauge!(
        "dispatchd_stock_low",
        "Stock locations (part, depot or van) at or below their reorder point."
    );
    describe_gauge!(
        "dispatchd_reorder_tasks_open",
        "Reorder tasks open or ordered."
    );
    describe_counter!(
        "dispatchd_maintenance_checked_total",
        "Maintenance schedules examined by due/overdue checks (daily and manual)."
    );
    describe_counter!(
        "dispatchd_maintenance_alerts_total",
        "maintenance.due / maintenance.overdue alerts raised, by kind."
    );
    describe_counter!(
        "dispatchd_maintenance_check_failures_total",
        "Due/overdue checks that could not run."
    );
    describe_gauge!(
        "dispatchd_connections_open",
        "Open TCP connections, HTTP and WebSocket together."
    );
    describe_counter!(
        "dispatchd_connections_refused_total",
        "Connections refused at accept, by reason (max_connections, max_connections_per_ip, accept_error)."
    );
    describe_counter!(
        "dispatchd_connections_timed_out_total",
        "Connections dropped for incomplete request headers (header) or idling (idle)."
    );
    describe_counter!(
        "dispatchd_hash_rejected_total",
        "Register or login requests answered 503 because password hashing was at capacity."
    );
    describe_gauge!(
        "dispatchd_ws_connections",
        "Open WebSocket connections by role."
    );
    describe_counter!(
        "dispatchd_ws_messages_in_total",
        "WebSocket messages received, by type (invalid: unparseable or unknown)."
    );
    describe_counter!(
        "dispatchd_ws_messages_out_total",
        "WebSocket messages queued to clients, by type."
    );
    describe_counter!(
        "dispatchd_job_transitions_total",
        "Engine events by kind (job transitions and worker registrations)."
    );
    describe_histogram!(
        "dispatchd_match_duration_seconds",
        "Time to create a job and find and reserve its nearest worker (engine call)."
    );
    describe_histogram!(
        "dispatchd_offer_to_accept_seconds",
        "Time from an offer to its acceptance."
    );
    describe_histogram!(
        "dispatchd_log_append_duration_seconds",
        "Time from handing events to the log (or, in a cluster, the Redis stream) until they are durable."
    );
    describe_counter!(
        "dispatchd_jobs_unmatched_total",
        "Jobs that ran out of search time (dead letters)."
    );
    describe_counter!(
        "dispatchd_ws_slow_client_disconnects_total",
        "Connections closed because the client did not read its messages."
    );
    describe_counter!(
        "dispatchd_ws_ping_timeouts_total",
        "Connections closed because the peer stopped answering pings."
    );
    describe_counter!(
        "dispatchd_rate_limited_total",
        "Requests and messages refused by the per-user rate limit."
    );
    describe_counter!(
        "dispatchd_position_updates_total",
        "Worker position reports applied."
    );
    describe_counter!(
        "dispatchd_notifications_total",
        "Notification delivery attempts by channel (webhook, email, sms) and outcome (delivered, retried, failed, skipped)."
    );
    describe_histogram!(
        "dispatchd_notification_attempt_duration_seconds",
        "Time one delivery attempt took, by channel."
    );
    describe_gauge!(
        "dispatchd_outbox_pending",
        "Notification deliveries waiting in the outbox (alert on a growing backlog)."
    );
    describe_gauge!("dispatchd_jobs", "Jobs in memory by status.");
    describe_gauge!("dispatchd_workers", "Registered workers.");
    describe_gauge!(
        "dispatchd_busy_workers",
        "Workers holding an offered or active job."
    );
}

/// Gauges read from the engine at scrape time.
pub fn engine_gauges(stats: &engine::Stats) {
    metrics::gauge!("dispatchd_workers").set(stats.workers as f64);
    metrics::gauge!("dispatchd_busy_workers").set(stats.busy_workers as f64);
    metrics::gauge!("dispatchd_stock_low").set(stats.low_stock as f64);
    metrics::gauge!("dispatchd_reorder_tasks_open").set(stats.reorder_open as f64);
    for (status, n) in &stats.by_status {
        metrics::gauge!("dispatchd_jobs", "status" => status.as_str()).set(*n as f64);
    }
}
