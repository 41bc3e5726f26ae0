//! What a run measures: latency histograms (HdrHistogram, microseconds),
//! message counters by kind, errors by kind, per-job tracking for lost
//! work, and server samples. Shared by every simulated client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use hdrhistogram::Histogram;
use serde::Serialize;

/// One latency distribution.
pub struct Latency {
    h: Mutex<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            // 1 µs .. 10 min, 3 significant digits.
            h: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds")),
        }
    }
}

impl Latency {
    pub fn record(&self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 600_000_000);
        self.h.lock().expect("histogram lock").saturating_record(us);
    }

    pub fn summary(&self) -> LatencySummary {
        let h = self.h.lock().expect("histogram lock");
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
            mean_ms: h.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Counters by name.
#[derive(Default)]
pub struct Counters {
    map: DashMap<&'static str, AtomicU64>,
}

impl Counters {
    pub fn add(&self, name: &'static str, n: u64) {
        if let Some(c) = self.map.get(name) {
            c.fetch_add(n, Ordering::Relaxed);
            return;
        }
        self.map
            .entry(name)
            .or_default()
            .fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, name: &str) -> u64 {
        self.map.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.map
            .iter()
            .map(|e| (e.key().to_string(), e.value().load(Ordering::Relaxed)))
            .collect()
    }
}

/// What happened to one job, as the generator saw it.
#[derive(Debug, Clone, Default)]
pub struct JobTrack {
    pub created: bool,
    pub offered: bool,
    pub accepted: bool,
    pub resident_saw_accepted: bool,
    pub completed_sent: bool,
    pub resident_saw_completed: bool,
    pub cancelled: bool,
    /// (city, skill) of the job.
    pub place: Option<(usize, String)>,
}

#[derive(Default)]
pub struct Stats {
    pub connect: Latency,
    pub job_create: Latency,
    pub offer: Latency,
    pub accept_to_resident: Latency,
    pub location_ack: Latency,
    /// Messages sent by kind (`out.location`, …) and received (`in.offer`, …).
    pub msgs: Counters,
    /// Errors and unexpected messages by kind.
    pub errors: Counters,
    /// Jobs by the generator's sequence number.
    pub jobs: DashMap<u64, JobTrack>,
    /// Accept send times by job id, for accept → resident-notified.
    pub accepted_at: DashMap<String, std::time::Instant>,
    /// Job ids by sequence number, once the create answered.
    pub job_ids: DashMap<String, u64>,
    pub connections_open: AtomicU64,
    pub workers_idle: AtomicU64,
    /// Chaos mode: per job, the furthest step its worker had acknowledged
    /// (1 accepted, 2 arrived, 3 completed) and that worker.
    pub acked_steps: DashMap<String, (u8, String)>,
    /// Offers that came while the worker's own message stream said it still
    /// held another job (a double booking, or a message skipped).
    pub double_booked: AtomicU64,
    /// Chaos mode: socket closed → open again (and resumed).
    pub reconnect: Latency,
}

impl Stats {
    pub fn error(&self, kind: &'static str) {
        self.errors.add(kind, 1);
    }

    pub fn track(&self, seq: u64, f: impl FnOnce(&mut JobTrack)) {
        f(&mut self.jobs.entry(seq).or_default());
    }

    pub fn acked_step(&self, job_id: &str, step: u8, worker: &str) {
        self.msgs.add("chaos.step_acknowledged", 1);
        let mut e = self
            .acked_steps
            .entry(job_id.to_string())
            .or_insert((0, String::new()));
        if step > e.0 {
            *e = (step, worker.to_string());
        }
    }

    pub fn seq_of(&self, job_id: &str) -> Option<u64> {
        self.job_ids.get(job_id).map(|s| *s)
    }
}

/// Server process samples from /proc.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerSample {
    pub rss_kib: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
}

pub fn sample(pid: u32) -> Option<ServerSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(ServerSample {
        rss_kib,
        cpu_ticks: utime + stime,
    })
}

/// The sum over several processes (a cluster's nodes).
pub fn sample_all(pids: &[u32]) -> Option<ServerSample> {
    if pids.is_empty() {
        return None;
    }
    let mut total = ServerSample::default();
    for p in pids {
        let s = sample(*p)?;
        total.rss_kib += s.rss_kib;
        total.cpu_ticks += s.cpu_ticks;
    }
    Some(total)
}

pub fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles() {
        let l = Latency::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.5, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.5, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.5, "{s:?}");
    }

    #[test]
    fn own_process_sample() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}
