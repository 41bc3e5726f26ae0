//! Latency percentiles and update throughput, the figures BENCHMARKS.md
//! quotes. Criterion reports means; a dispatch target is a tail, so this
//! harness times every query on its own into an HdrHistogram.
//!
//! `cargo bench -p dispatchd-benches --bench latency`
//! Env: `SIZES=1000,10000` to pick fleet sizes, `SWEEP=1` to compare index
//! resolutions, `PARTS=1` for only the parts-filter table, `UPDATES=n`
//! updates per throughput run.

use std::sync::Barrier;
use std::time::Instant;

use dispatchd_benches::*;
use engine::{Engine, EngineConfig, IndexConfig, Millis, WorkerHandle, WorkerId};
use hdrhistogram::Histogram;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

struct Lat {
    p50: u64,
    p99: u64,
    p999: u64,
    mean: f64,
}

fn time_queries(queries: &[Query], n: usize, mut f: impl FnMut(Query)) -> Lat {
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    // Warm up caches (ring geometry, branch predictors) on the same queries.
    for q in queries.iter().take(n.min(512)) {
        f(*q);
    }
    for q in queries.iter().cycle().take(n) {
        let t = Instant::now();
        f(*q);
        h.record(t.elapsed().as_nanos().max(1) as u64).unwrap();
    }
    Lat {
        p50: h.value_at_quantile(0.50),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        mean: h.mean(),
    }
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

fn matching() {
    let skills = skill_table();
    let fresh_after = NOW.minus_secs(30);
    println!("## Match latency (µs per query; every query timed alone)\n");
    println!("| scenario | workers | impl | p50 | p99 | p99.9 | mean | p50 ratio | p99 ratio |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for shape in [Shape::Dense, Shape::Sparse, Shape::Rare] {
        for n in sizes_from_env() {
            let s = scenario(shape, n, 20_000);
            let before = rss_bytes();
            let e = build_engine(&s, EngineConfig::default());
            let engine_bytes = rss_bytes().saturating_sub(before);
            let rtree = RTreeBaseline::new(&s, 20_000.0);
            let brute = BruteForce::new(&s, 20_000.0);
            // Same answers first: the comparison is only fair if all three agree.
            let mut found = 0;
            for q in s.queries.iter().take(300) {
                let want = brute.nearest(*q, fresh_after);
                assert_eq!(
                    engine_nearest(&e, &skills, *q),
                    want,
                    "{} {n}: engine vs brute",
                    s.name
                );
                assert_eq!(
                    rtree.nearest(*q, fresh_after),
                    want,
                    "{} {n}: rtree vs brute",
                    s.name
                );
                found += want.is_some() as usize;
            }
            let queries = 20_000;
            let d = time_queries(&s.queries, queries, |q| {
                std::hint::black_box(engine_nearest(&e, &skills, q));
            });
            // The R-tree walks every unskilled worker nearer than the rare one:
            // tens of milliseconds a query at 1M, so fewer of them there.
            let rtree_n = if shape == Shape::Rare && n >= 1_000_000 {
                1_000
            } else {
                queries
            };
            let r = time_queries(&s.queries, rtree_n, |q| {
                std::hint::black_box(rtree.nearest(q, fresh_after));
            });
            let brute_n = if n >= 1_000_000 {
                300
            } else if n >= 100_000 {
                2_000
            } else {
                queries
            };
            let b = time_queries(&s.queries, brute_n, |q| {
                std::hint::black_box(brute.nearest(q, fresh_after));
            });
            for (name, l) in [("dispatchd", &d), ("rtree", &r), ("brute", &b)] {
                let ratio = |x: u64, y: u64| format!("{:.1}×", x as f64 / y as f64);
                let (rp50, rp99) = if name == "dispatchd" {
                    ("1.0×".to_string(), "1.0×".to_string())
                } else {
                    (ratio(l.p50, d.p50), ratio(l.p99, d.p99))
                };
                println!(
                    "| {} | {n} | {name} | {} | {} | {} | {:.2} | {rp50} | {rp99} |",
                    s.name,
                    us(l.p50),
                    us(l.p99),
                    us(l.p999),
                    l.mean / 1000.0
                );
            }
            eprintln!(
                "{} {n}: {found}/300 queries had a match; engine RSS growth {:.1} MiB ({:.0} B/worker)",
                s.name,
                engine_bytes as f64 / 1048576.0,
                engine_bytes as f64 / n as f64
            );
        }
    }
    println!("\nRatios are baseline ÷ dispatchd: above 1 means dispatchd is faster.\n");
}

/// Updates per second for workers walking a few metres per update, through
/// the handle the gateway holds per connection (`by_id`: through the id).
fn update_rate(e: &Engine, s: &Scenario, threads: usize, total: usize, by_id: bool) -> f64 {
    let ids: Vec<WorkerId> = (0..s.workers.len()).map(worker_id).collect();
    let handles: Vec<WorkerHandle> = ids.iter().map(|id| e.worker_handle(id).unwrap()).collect();
    let barrier = Barrier::new(threads);
    let per = total / threads;
    let start = std::sync::Mutex::new(None::<Instant>);
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (ids, handles, barrier, start) = (&ids, &handles, &barrier, &start);
            sc.spawn(move || {
                let mut rng = Rng(1 + t as u64);
                let mine: Vec<usize> = (t..ids.len()).step_by(threads).collect();
                let mut pos: Vec<(f64, f64)> = mine
                    .iter()
                    .map(|&i| (s.workers[i].lat, s.workers[i].lng))
                    .collect();
                let steps = walk_steps(&mut rng);
                barrier.wait();
                start.lock().unwrap().get_or_insert_with(Instant::now);
                let mut j = 0;
                for k in 0..per {
                    j = (j + 7919) % mine.len();
                    let p = &mut pos[j];
                    let st = steps[k % steps.len()];
                    p.0 += st.0;
                    p.1 += st.1;
                    let now = Millis(NOW.0 + k as i64 / 1000);
                    if by_id {
                        e.update_position(&ids[mine[j]], p.0, p.1, now).unwrap();
                    } else {
                        e.update_position_of(&handles[mine[j]], p.0, p.1, now)
                            .unwrap();
                    }
                }
            });
        }
    });
    let elapsed = start.lock().unwrap().unwrap().elapsed();
    (per * threads) as f64 / elapsed.as_secs_f64()
}

fn updates() {
    let total: usize = std::env::var("UPDATES")
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(10_000_000);
    println!("## Position updates (workers walking ±3 m per update, 100k-worker dense metro)\n");
    println!("| threads | via handle | via id |");
    println!("|---:|---:|---:|");
    let s = scenario(Shape::Dense, 100_000, 0);
    let e = build_engine(&s, EngineConfig::default());
    for threads in [1, 2] {
        let h = update_rate(&e, &s, threads, total, false);
        let i = update_rate(&e, &s, threads, total, true);
        println!("| {threads} | {:.2} M/s | {:.2} M/s |", h / 1e6, i / 1e6);
    }
    println!();
}

fn sweep() {
    let skills = skill_table();
    println!("## Index resolution sweep (100k workers; p50 / p99 µs)\n");
    println!("| fine | coarse | fine rings | dense p50 | dense p99 | rare p50 | rare p99 | sparse p99 | updates/s (1 thread) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let dense = scenario(Shape::Dense, 100_000, 20_000);
    let rare = scenario(Shape::Rare, 100_000, 20_000);
    let sparse = scenario(Shape::Sparse, 100_000, 20_000);
    for fine in [8u8, 9, 10] {
        for coarse in [5u8, 6] {
            if coarse >= fine {
                continue;
            }
            for rings in [2u32, 3, 4, 6, 8] {
                let cfg = EngineConfig {
                    index: IndexConfig {
                        fine_res: fine,
                        coarse_res: coarse,
                        fine_rings: rings,
                    },
                    ..EngineConfig::default()
                };
                let run = |s: &Scenario| {
                    let e = build_engine(s, cfg.clone());
                    time_queries(&s.queries, 20_000, |q| {
                        std::hint::black_box(engine_nearest(&e, &skills, q));
                    })
                };
                let (d, r, sp) = (run(&dense), run(&rare), run(&sparse));
                let e = build_engine(&dense, cfg.clone());
                let rate = update_rate(&e, &dense, 1, 3_000_000, false);
                println!(
                    "| {fine} | {coarse} | {rings} | {} | {} | {} | {} | {} | {:.2} M |",
                    us(d.p50),
                    us(d.p99),
                    us(r.p50),
                    us(r.p99),
                    us(sp.p99),
                    rate / 1e6
                );
            }
        }
    }
    println!();
}

/// Matching a job that needs a part (see `stock_parts`): p50/p99 per
/// share of vans holding it.
fn parts_matching() {
    let skills = skill_table();
    println!("## Match latency with a parts filter (µs per query; dense fleet)\n");
    println!("| workers | part held by | p50 | p99 | p99.9 | mean |");
    println!("|---:|---|---:|---:|---:|---:|");
    for n in sizes_from_env() {
        let s = scenario(Shape::Dense, n, 4096);
        let e = build_engine(&s, EngineConfig::default());
        let kinds = stock_parts(&e, &s);
        let l = time_queries(&s.queries, 20_000, |q| {
            std::hint::black_box(engine_nearest(&e, &skills, q));
        });
        println!(
            "| {n} | (no parts) | {} | {} | {} | {:.2} |",
            us(l.p50),
            us(l.p99),
            us(l.p999),
            l.mean / 1000.0
        );
        for (label, lines) in &kinds {
            let l = time_queries(&s.queries, 20_000, |q| {
                std::hint::black_box(
                    e.nearest_matchable_carrying(
                        q.lat,
                        q.lng,
                        &skills[q.skill as usize],
                        lines,
                        NOW,
                    )
                    .unwrap(),
                );
            });
            println!(
                "| {n} | {} | {} | {} | {} | {:.2} |",
                label.trim_start_matches("in_").replace("pct", " % of vans"),
                us(l.p50),
                us(l.p99),
                us(l.p999),
                l.mean / 1000.0
            );
        }
    }
    println!();
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` the
    // harness would run for minutes in a debug build, so it only says so.
    if !std::env::args().any(|a| a == "--bench") {
        println!("latency harness: run it with `cargo bench -p dispatchd-benches --bench latency`");
        return;
    }
    if std::env::var("SWEEP").is_ok() {
        sweep();
        return;
    }
    if std::env::var("PARTS").is_ok() {
        parts_matching();
        return;
    }
    matching();
    parts_matching();
    updates();
}
