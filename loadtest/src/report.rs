//! The human summary printed at the end of a run.

use std::fmt::Write;

use crate::run::Report;
use crate::stats::LatencySummary;

fn row(out: &mut String, name: &str, s: &LatencySummary) {
    let _ = writeln!(
        out,
        "  {name:<28} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
    );
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.1}x", a / b)
    } else {
        "n/a".into()
    }
}

pub fn summary(r: &Report) -> String {
    let mut o = String::new();
    let opts = r.options.as_ref();
    if let Some(opts) = opts {
        let _ = writeln!(
            o,
            "scenario {:?}: {} workers, {} residents, {} cities, {:.1} jobs/s, {:.2} positions/s per worker, {:.0} s",
            opts.scenario, opts.workers, opts.residents, opts.cities, opts.jobs_per_s,
            opts.positions_per_s, opts.duration.as_secs_f64()
        );
    }
    let _ = writeln!(
        o,
        "sockets: {} of {} open (open-files limit {}), ramp {:.1} s, run {:.1} s",
        r.sockets_opened_peak, r.sockets_wanted, r.fd_limit, r.ramp_s, r.run_s
    );
    let _ = writeln!(o, "\nlatency (ms)                       count       p50       p90       p99     p99.9       max");
    row(&mut o, "connect", &r.connect);
    row(&mut o, "job create (from schedule)", &r.job_create);
    row(&mut o, "offer (created -> worker)", &r.offer);
    row(&mut o, "accept -> resident notified", &r.accept_to_resident);
    row(&mut o, "location ack (sampled)", &r.location_ack);
    let _ = writeln!(o, "\nthroughput over the run (per second)");
    for (k, v) in &r.rates {
        if *v > 0.0 {
            let _ = writeln!(o, "  {k:<28} {v:>12.1}");
        }
    }
    let _ = writeln!(
        o,
        "\njobs: {} created, {} offered, {} never offered, {} seen completed by their resident",
        r.jobs_created, r.jobs_offered, r.jobs_never_offered, r.jobs_completed_seen
    );
    let _ = writeln!(
        o,
        "lost work: {} never offered with idle workers, {} accepts and {} completions the resident never saw",
        r.lost.never_offered_with_idle_workers,
        r.lost.accepted_without_resident_update,
        r.lost.completed_without_resident_update
    );
    if r.errors.is_empty() {
        let _ = writeln!(o, "errors: none");
    } else {
        let _ = writeln!(o, "errors:");
        for (k, v) in &r.errors {
            let _ = writeln!(o, "  {k:<36} {v}");
        }
    }
    let s = &r.server;
    if let Some(pid) = s.pid {
        let _ = writeln!(
            o,
            "\nserver pid {pid} ({} node(s)): RSS {} MiB at start, {} MiB with all sockets, peak {} MiB; {} per socket; CPU {} of one core during the run",
            s.nodes,
            s.rss_start_kib / 1024,
            s.rss_connected_kib / 1024,
            s.rss_peak_kib / 1024,
            s.rss_per_connection_bytes
                .map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0)),
            s.cpu_run_pct.map_or("n/a".into(), |c| format!("{c:.0}%")),
        );
    }
    if s.rss_by_minute_kib.len() > 1 {
        let line: Vec<String> = s
            .rss_by_minute_kib
            .iter()
            .map(|(m, k)| format!("{m}m {} MiB", k / 1024))
            .collect();
        let _ = writeln!(o, "server RSS by minute: {}", line.join(", "));
    }
    let _ = writeln!(
        o,
        "server view: {} jobs listed ({} offered at least once, {} never)",
        s.jobs_listed, s.jobs_listed_offered, s.jobs_listed_waiting
    );
    if let Some(u) = &r.cluster_redis {
        let positions = r.totals.get("out.location").copied().unwrap_or(0) as f64;
        let xadd = u.commands.get("xadd").copied().unwrap_or((0, 0));
        let _ = writeln!(
            o,
            "cluster redis: {:.1} CPU s over the run; {} XADD ({:.1} us each in Redis); {:.2} us of Redis CPU per position report",
            u.cpu_s,
            xadd.0,
            if xadd.0 > 0 { xadd.1 as f64 / xadd.0 as f64 } else { 0.0 },
            if positions > 0.0 { u.cpu_s * 1e6 / positions } else { 0.0 },
        );
    }
    if let Some(c) = &r.chaos {
        let ready: Vec<u64> = c.cycles.iter().map(|c| c.ready_ms).collect();
        let mean = ready.iter().sum::<u64>() as f64 / ready.len().max(1) as f64;
        let _ = writeln!(
            o,
            "\nchaos: {} kill -9 cycles survived ({} restart failures); time to ready after a kill: mean {:.0} ms, max {} ms ({:?})",
            c.cycles.len(),
            c.restart_failures,
            mean,
            ready.iter().max().copied().unwrap_or(0),
            ready,
        );
        let _ = writeln!(
            o,
            "  apps: {} reconnects, {} resumed without a gap, {} with a gap (jobs re-read); creates: {} retried, {} answered from the original",
            c.reconnects, c.resumed_without_gap, c.resumed_with_gap, c.creates_retried, c.creates_replayed
        );
        let _ = writeln!(
            o,
            "  audit: {} acknowledged jobs and {} acknowledged steps checked: lost jobs {}, lost steps {}, double-booked {}, unfinished {} (offers lost with idle workers {}), jobs the nodes disagree on {}",
            c.jobs_acknowledged, c.steps_acknowledged, c.lost_jobs, c.lost_steps, c.double_booked, c.unfinished, c.offers_lost, c.diverged_jobs
        );
        for e in &c.examples {
            let _ = writeln!(o, "    {e}");
        }
    }
    if let Some(m) = r.saturate_matches_per_s {
        let _ = writeln!(
            o,
            "saturation: {m:.0} matches/s (jobs created back to back, each offered)"
        );
    }
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            o,
            "\nbaseline redis-geo (GEOADD + Lua GEOSEARCH ASC / filter / reserve), same workload, {}:",
            if b.durable { "appendfsync always" } else { "no persistence" }
        );
        let _ = writeln!(
            o,
            "  {:<34} {:>14} {:>14} {:>10}",
            "", "dispatchd", "redis-geo", "ratio"
        );
        let m = &r.server.metrics;
        let engine_us = match (
            m.get("dispatchd_match_duration_seconds_sum"),
            m.get("dispatchd_match_duration_seconds_count"),
        ) {
            (Some(s), Some(c)) if *c > 0.0 => Some(s / c * 1e6),
            _ => None,
        };
        if let (Some(d), Some(rb)) = (engine_us, b.server_usec_per_match) {
            let _ = writeln!(
                o,
                "  {:<34} {:>14.1} {:>14.1} {:>10}",
                "match, server-side mean us",
                d,
                rb,
                ratio(rb, d)
            );
        }
        let _ = writeln!(
            o,
            "  {:<34} {:>14.3} {:>14.3} {:>10}",
            "match p50 ms, client-side*",
            r.offer.p50_ms,
            b.match_latency.p50_ms,
            ratio(b.match_latency.p50_ms, r.offer.p50_ms)
        );
        let _ = writeln!(
            o,
            "  {:<34} {:>14.3} {:>14.3} {:>10}",
            "match p99 ms, client-side*",
            r.offer.p99_ms,
            b.match_latency.p99_ms,
            ratio(b.match_latency.p99_ms, r.offer.p99_ms)
        );
        if let (Some(d), Some(bm)) = (r.saturate_matches_per_s, b.saturate_matches_per_s) {
            let _ = writeln!(
                o,
                "  {:<34} {:>14.0} {:>14.0} {:>10}",
                "matches/s (saturated)",
                d,
                bm,
                ratio(d, bm)
            );
        }
        let _ = writeln!(
            o,
            "  {:<34} {:>14.0} {:>14.0}",
            "positions/s applied",
            r.rates.get("out.location").copied().unwrap_or(0.0),
            b.positions_per_s
        );
        let _ = writeln!(
            o,
            "  redis-geo: {} matched, {} found no worker, {} errors; GEOADD batch p99 {:.3} ms, {:.1} us per GEOADD in Redis",
            b.matched,
            b.no_worker,
            b.errors,
            b.position_batch.p99_ms,
            b.server_usec_per_geoadd.unwrap_or(f64::NAN)
        );
        let _ = writeln!(
            o,
            "  * dispatchd: POST /v1/jobs scheduled -> offer frame at the worker (durable, pushed);\n    redis-geo: EVALSHA scheduled -> reply (nothing pushed); ratio > 1: dispatchd ahead"
        );
    }
    o
}
