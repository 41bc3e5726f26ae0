//! Maintenance at the seed's scale: 10 000 properties with 3 schedules
//! each (seed 003 reports 10 000 schedules in under 2 minutes). The daily
//! due/overdue check over all 30 000 — the first run of a day, raising an
//! alert for every due and overdue schedule, and a repeat that raises none
//! — and the time driver's tick with nothing due.
//! `cargo bench -p dispatchd-benches --bench maintenance`
//! (`SIZES=1000` shrinks it to 1 000 properties for a smoke pass).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use dispatchd_benches::{sizes_from_env, NOW};
use engine::maintenance::{Anchor, Every, Schedule, StepUnit};
use engine::{Engine, EngineConfig, Millis, Property, ResidentId, Skill};

const H: u64 = 3600;
const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];

fn properties() -> usize {
    sizes_from_env()
        .into_iter()
        .max()
        .unwrap_or(10_000)
        .min(10_000)
}

/// An engine with `n` properties and 3 schedules at each, created three
/// days before `NOW`: at `NOW` a third are due, a third overdue, a third
/// upcoming.
fn build(n: usize) -> Engine {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let made = NOW.minus_secs(72 * H);
    for i in 0..n {
        let pid = format!("prop_{i:06}");
        e.create_property(
            Property {
                id: pid.clone(),
                owner_id: ResidentId::from(format!("owner_{}", i % 500)),
                name: format!("Home {i}"),
                address: None,
                lat: 48.8 + (i % 100) as f64 * 0.002,
                lng: 2.3 + (i / 100) as f64 * 0.002,
                created_at: made,
            },
            made,
        )
        .unwrap();
        let starts = [
            NOW.plus_secs(2 * H),
            NOW.minus_secs(2 * H),
            NOW.plus_secs(240 * H),
        ];
        let units = [StepUnit::Month, StepUnit::Week, StepUnit::Year];
        for (k, start) in starts.into_iter().enumerate() {
            let s = Schedule {
                id: format!("sch_{i:06}_{k}"),
                property_id: pid.clone(),
                title: "Boiler service".into(),
                skill: Skill::new("hvac").unwrap(),
                description: String::new(),
                every: Every {
                    unit: units[k],
                    interval: 1 + (i % 3) as u32,
                },
                timezone: ZONES[i % ZONES.len()].into(),
                start_at: start,
                next_due_at: start,
                anchor: if i % 2 == 0 {
                    Anchor::Due
                } else {
                    Anchor::Completion
                },
                lead_s: 0,
                assigned_to: None,
                paused: false,
                open_job_id: None,
                missed: 0,
                created_at: made,
                updated_at: made,
                dispatched_for: None,
                jobs_created: 0,
                last_done_at: None,
                alerted_due: None,
                alerted_overdue: None,
            };
            e.create_schedule(s, made).unwrap();
        }
    }
    e
}

fn check(c: &mut Criterion) {
    let n = properties();
    let label = format!("{}k_schedules", 3 * n / 1000);
    let mut g = c.benchmark_group("maintenance");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(format!("check_first_run/{label}"), |b| {
        b.iter_batched(
            || build(n),
            |e| black_box(e.maintenance_check(true, NOW).unwrap().len()),
            BatchSize::PerIteration,
        )
    });
    let e = build(n);
    let first = e.maintenance_check(true, NOW).unwrap();
    // Every due and overdue schedule alerted once, then the report.
    assert_eq!(first.len(), 2 * n + 1);
    g.bench_function(format!("check_repeat/{label}"), |b| {
        b.iter(|| black_box(e.maintenance_check(false, NOW).unwrap().len()))
    });
    // Three days earlier nothing is due yet: what every 100 ms tick costs.
    let e = build(n);
    let early = Millis(NOW.0 - 71 * 3_600_000);
    g.bench_function(format!("tick_nothing_due/{label}"), |b| {
        b.iter(|| black_box(e.tick(early).len()))
    });
    g.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
