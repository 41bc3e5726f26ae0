//! One run: ramp the connections, play the scenario for its duration,
//! drain, optionally saturate, stop — sampling the server's memory and CPU
//! throughout — and assemble the report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::baseline::BaselineReport;
use crate::chaos::{self, ChaosReport};
use crate::net::raise_nofile;
use crate::opts::Options;
use crate::sim::{self, mint, Shared};
use crate::stats::{clock_ticks_per_s, sample_all, LatencySummary, ServerSample, Stats};
use crate::target::Target;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerReport {
    pub pid: Option<u32>,
    /// Nodes under test (RSS and CPU are their sums).
    pub nodes: usize,
    pub rss_start_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_peak_kib: u64,
    /// RSS at each whole minute of the run phase (minute, KiB): flat in a
    /// soak once finished jobs leave memory (`keep_finished_s`).
    pub rss_by_minute_kib: Vec<(u64, u64)>,
    /// (RSS with every socket open − RSS before) / sockets.
    pub rss_per_connection_bytes: Option<f64>,
    /// CPU over the run phase, percent of one core.
    pub cpu_run_pct: Option<f64>,
    /// Counters from the server's /metrics at the end.
    pub metrics: BTreeMap<String, f64>,
    /// The server's own view of the jobs (ops listing, up to 500).
    pub jobs_listed: u64,
    pub jobs_listed_offered: u64,
    pub jobs_listed_waiting: u64,
    pub clean_exit: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LostWork {
    /// Created, never offered, while the drain ended with idle workers and
    /// some worker in the job's city has its skill.
    pub never_offered_with_idle_workers: u64,
    /// Accepted by a worker, but the resident never saw it.
    pub accepted_without_resident_update: u64,
    /// Completed by a worker, but the resident never saw it.
    pub completed_without_resident_update: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub options: Option<Options>,
    pub fd_limit: u64,
    pub sockets_wanted: usize,
    pub sockets_opened_peak: u64,
    pub ramp_s: f64,
    pub run_s: f64,
    pub connect: LatencySummary,
    pub job_create: LatencySummary,
    pub offer: LatencySummary,
    pub accept_to_resident: LatencySummary,
    pub location_ack: LatencySummary,
    /// Messages per second over the run phase, by kind.
    pub rates: BTreeMap<String, f64>,
    pub totals: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub jobs_created: u64,
    pub jobs_offered: u64,
    pub jobs_never_offered: u64,
    pub jobs_completed_seen: u64,
    pub lost: LostWork,
    /// Offers per second while residents create jobs back to back and
    /// workers finish at once (`--saturate-s`).
    pub saturate_matches_per_s: Option<f64>,
    pub server: ServerReport,
    pub baseline: Option<BaselineReport>,
    /// The cluster's Redis over the whole run (several nodes only).
    pub cluster_redis: Option<crate::baseline::RedisUsage>,
    /// The crash loop and its audit (`--chaos-kill-every-s`).
    pub chaos: Option<ChaosReport>,
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn progress(enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix:>8} {msg}").expect("template"),
    );
    pb
}

async fn server_metrics(sh: &Shared) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut text = String::new();
    for base in &sh.bases {
        if let Ok(r) = sh.http.get(format!("{base}/metrics")).send().await {
            if let Ok(t) = r.text().await {
                text.push_str(&t);
            }
        }
    }
    for line in text.lines() {
        if line.starts_with('#') || !line.starts_with("dispatchd_") {
            continue;
        }
        if line.contains("_bucket{") {
            continue;
        }
        if let Some((k, v)) = line.rsplit_once(' ') {
            if let Ok(v) = v.parse::<f64>() {
                // Counters add up over nodes; job gauges are the same on every node.
                *out.entry(k.to_string()).or_insert(0.0) += v;
            }
        }
    }
    out
}

/// Plays the scenario against `target`.
pub async fn run(
    opts: Options,
    target: &Target,
    secret: &str,
    show_progress: bool,
) -> anyhow::Result<Report> {
    let fd_limit = raise_nofile();
    let wanted = opts.sockets();
    if (fd_limit as usize) < wanted + 64 {
        eprintln!(
            "warning: open-files limit {fd_limit} is below the {wanted} sockets asked for; \
             connections past it will fail (the hard limit can only be raised by root)"
        );
    }
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?;
    let sh = Arc::new(Shared {
        opts: opts.clone(),
        stats: stats.clone(),
        servers: target.nodes.iter().map(|n| n.addr).collect(),
        bases: target.nodes.iter().map(|n| n.base.clone()).collect(),
        http,
        secret: secret.to_string(),
        start: Instant::now(),
        stop: stop_rx,
        fast: AtomicBool::new(false),
    });

    // Server samples every second.
    let samples: Arc<Mutex<Vec<(Instant, ServerSample)>>> = Arc::default();
    let pids = target.pids();
    let restarter = target.restarter();
    if opts.chaos.is_some() && restarter.is_none() {
        anyhow::bail!("the chaos mode kills and restarts the server: start it with --server-bin");
    }
    let sampler = (!pids.is_empty()).then(|| {
        let pids = pids.clone();
        let restarter = restarter.clone();
        let samples = samples.clone();
        let mut stop = sh.stop.clone();
        tokio::spawn(async move {
            loop {
                // A restarted node has a new pid.
                let pids = restarter
                    .as_ref()
                    .map_or_else(|| pids.clone(), |r| r.pids());
                if let Some(s) = sample_all(&pids) {
                    samples.lock().expect("samples").push((Instant::now(), s));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        })
    });
    let rss_start = sample_all(&pids).map_or(0, |s| s.rss_kib);

    let pb = progress(show_progress);
    let ticker = {
        let (pb, stats, stop) = (pb.clone(), stats.clone(), sh.stop.clone());
        tokio::spawn(async move {
            let mut last = stats.msgs.snapshot();
            let mut t = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if *stop.borrow() {
                    break;
                }
                let now = stats.msgs.snapshot();
                let dt = t.elapsed().as_secs_f64();
                t = Instant::now();
                let rate = |k: &str| {
                    (now.get(k).copied().unwrap_or(0) - last.get(k).copied().unwrap_or(0)) as f64
                        / dt
                };
                pb.set_message(format!(
                    "sockets {} | positions {:.0}/s | jobs {:.0}/s | offers {:.0}/s | job updates {:.0}/s | errors {}",
                    stats.connections_open.load(Ordering::Relaxed),
                    rate("out.location"),
                    rate("out.create"),
                    rate("in.offer"),
                    rate("in.job"),
                    stats.errors.snapshot().values().sum::<u64>(),
                ));
                pb.tick();
                last = now;
            }
        })
    };

    // Ramp.
    pb.set_prefix("ramp");
    let ramp_start = Instant::now();
    let mut tasks = Vec::with_capacity(wanted);
    let every = Duration::from_secs_f64(1.0 / opts.ramp_per_s.max(1.0));
    let mut next = tokio::time::Instant::now();
    for i in 0..opts.workers {
        tokio::time::sleep_until(next).await;
        next += every;
        tasks.push(tokio::spawn(sim::worker(sh.clone(), i)));
    }
    if opts.follow {
        for i in 0..opts.residents {
            tokio::time::sleep_until(next).await;
            next += every;
            tasks.push(tokio::spawn(sim::resident_socket(sh.clone(), i)));
        }
    }
    let settle = Instant::now() + Duration::from_secs(120);
    while Instant::now() < settle {
        let open = stats.connections_open.load(Ordering::Relaxed);
        let failed = stats.errors.get("connect_failed");
        if open + failed >= wanted as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ramp_s = ramp_start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = sample_all(&pids).map_or(0, |s| s.rss_kib);
    let opened = stats.connections_open.load(Ordering::Relaxed);

    // Run.
    pb.set_prefix("run");
    let before = stats.msgs.snapshot();
    let cpu_before = sample_all(&pids);
    let run_start = Instant::now();
    let run_end = run_start + opts.duration;
    let killer = opts
        .chaos
        .zip(restarter.clone())
        .map(|(c, r)| tokio::spawn(chaos::kill_loop(r, c, opts.seed, sh.stop.clone())));
    let mut seq: u64 = 0;
    let mut creators = Vec::new();
    if opts.jobs_per_s > 0.0 {
        loop {
            let sched = run_start + Duration::from_secs_f64(seq as f64 / opts.jobs_per_s);
            if sched >= run_end {
                break;
            }
            tokio::time::sleep_until(sched.into()).await;
            creators.push(tokio::spawn(sim::create_job(
                sh.clone(),
                seq,
                sched,
                opts.seed ^ seq,
            )));
            seq += 1;
            if creators.len() > 4096 {
                creators.retain(|t| !t.is_finished());
            }
        }
    } else {
        tokio::time::sleep_until(run_end.into()).await;
    }
    let run_s = run_start.elapsed().as_secs_f64();
    let after = stats.msgs.snapshot();
    let cpu_after = sample_all(&pids);
    for c in creators {
        let _ = c.await;
    }

    // Drain: let jobs in flight finish.
    pb.set_prefix("drain");
    let drain_end = Instant::now() + opts.drain;
    while Instant::now() < drain_end {
        let busy = opened
            .saturating_sub(stats.workers_idle.load(Ordering::Relaxed))
            .saturating_sub(if opts.follow {
                opts.residents as u64
            } else {
                0
            });
        let unsettled = stats.jobs.iter().any(|t| {
            t.created
                && t.offered
                && !t.cancelled
                && !(t.completed_sent && t.resident_saw_completed)
        });
        if busy == 0 && !unsettled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The server's view of the run's jobs, before any saturation.
    let ops = mint(secret, "lt-ops", "ops", None);
    let (mut listed, mut listed_offered) = (0, 0);
    if let Ok(r) = sh
        .http
        .get(format!("{}/v1/jobs?limit=500", sh.bases[0]))
        .bearer_auth(&ops)
        .send()
        .await
    {
        if let Ok(v) = r.json::<Value>().await {
            for j in v["jobs"].as_array().into_iter().flatten() {
                listed += 1;
                if j["attempts"].as_u64().unwrap_or(0) > 0 {
                    listed_offered += 1;
                }
            }
        }
    }
    let idle_at_end = stats.workers_idle.load(Ordering::Relaxed);
    let chaos_report = match killer {
        Some(k) => {
            let (cycles, restart_failures) = k.await.unwrap_or_default();
            let mut rep = chaos::audit(&sh, idle_at_end).await;
            rep.cycles = cycles;
            rep.restart_failures = restart_failures;
            Some(rep)
        }
        None => None,
    };

    // Saturation: back-to-back creates, instant workers.
    let saturate = if opts.saturate > Duration::ZERO && opts.workers > 0 {
        pb.set_prefix("saturate");
        sh.fast.store(true, Ordering::Relaxed);
        let offers0 = stats.msgs.get("in.offer");
        let t0 = Instant::now();
        let end = t0 + opts.saturate;
        let mut loops = Vec::new();
        for c in 0..opts.saturate_clients {
            let sh = sh.clone();
            loops.push(tokio::spawn(async move {
                let mut k = 0u64;
                while Instant::now() < end {
                    let s = sim::SATURATE_BASE + (c as u64) * 10_000_000 + k;
                    sim::create_job(sh.clone(), s, Instant::now(), s).await;
                    k += 1;
                }
            }));
        }
        for l in loops {
            let _ = l.await;
        }
        let n = stats.msgs.get("in.offer") - offers0;
        tokio::time::sleep(Duration::from_secs(2)).await;
        sh.fast.store(false, Ordering::Relaxed);
        Some(n as f64 / t0.elapsed().as_secs_f64())
    } else {
        None
    };

    let metrics = server_metrics(&sh).await;
    pb.set_prefix("stop");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let _ = ticker.await;
    if let Some(s) = sampler {
        let _ = s.await;
    }
    pb.finish_and_clear();

    // Assemble.
    let mut rates = BTreeMap::new();
    for (k, v) in &after {
        let d = v - before.get(k).copied().unwrap_or(0);
        rates.insert(k.clone(), d as f64 / run_s.max(1e-9));
    }
    let samples = samples.lock().expect("samples");
    let rss_peak = samples
        .iter()
        .map(|(_, s)| s.rss_kib)
        .max()
        .unwrap_or(rss_connected);
    let mut rss_by_minute: Vec<(u64, u64)> = Vec::new();
    for (at, s) in samples.iter() {
        if *at < run_start {
            continue;
        }
        let minute = at.duration_since(run_start).as_secs() / 60;
        if rss_by_minute.last().is_none_or(|(m, _)| *m < minute) {
            rss_by_minute.push((minute, s.rss_kib));
        }
    }
    let cpu_run_pct = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => {
            Some((b.cpu_ticks - a.cpu_ticks) as f64 / clock_ticks_per_s() / run_s * 100.0)
        }
        _ => None,
    };
    let (mut created, mut offered, mut never, mut completed) = (0, 0, 0, 0);
    let mut lost = LostWork::default();
    let covered = sim::coverage(&opts);
    for t in stats.jobs.iter() {
        if *t.key() >= sim::SATURATE_BASE {
            continue; // saturation jobs are counted by rate only
        }
        if t.created || t.offered {
            created += 1;
        }
        if t.offered {
            offered += 1;
        } else if t.created {
            never += 1;
            let coverable = t.place.as_ref().is_some_and(|p| covered.contains(p));
            if idle_at_end > 0 && !t.cancelled && coverable {
                lost.never_offered_with_idle_workers += 1;
            }
        }
        if t.resident_saw_completed {
            completed += 1;
        }
        if opts.follow {
            if t.accepted && !t.resident_saw_accepted {
                lost.accepted_without_resident_update += 1;
            }
            if t.completed_sent && !t.resident_saw_completed {
                lost.completed_without_resident_update += 1;
            }
        }
    }
    Ok(Report {
        options: Some(opts.clone()),
        fd_limit,
        sockets_wanted: wanted,
        sockets_opened_peak: opened,
        ramp_s,
        run_s,
        connect: stats.connect.summary(),
        job_create: stats.job_create.summary(),
        offer: stats.offer.summary(),
        accept_to_resident: stats.accept_to_resident.summary(),
        location_ack: stats.location_ack.summary(),
        rates,
        totals: stats.msgs.snapshot(),
        errors: stats.errors.snapshot(),
        jobs_created: created,
        jobs_offered: offered,
        jobs_never_offered: never,
        jobs_completed_seen: completed,
        lost,
        saturate_matches_per_s: saturate,
        server: ServerReport {
            pid: pids.first().copied(),
            nodes: target.nodes.len(),
            rss_start_kib: rss_start,
            rss_connected_kib: rss_connected,
            rss_peak_kib: rss_peak,
            rss_by_minute_kib: rss_by_minute,
            rss_per_connection_bytes: (opened > 0 && rss_connected > 0)
                .then(|| (rss_connected.saturating_sub(rss_start)) as f64 * 1024.0 / opened as f64),
            cpu_run_pct,
            metrics,
            jobs_listed: listed,
            jobs_listed_offered: listed_offered,
            jobs_listed_waiting: listed - listed_offered,
            clean_exit: None,
        },
        baseline: None,
        cluster_redis: None,
        chaos: chaos_report,
    })
}
