//! Criterion benchmarks: matching (dispatchd vs R-tree vs brute force on the
//! same fleets and queries), position updates, a whole job lifecycle, and the
//! wire codecs. `cargo bench -p dispatchd-benches --bench engine`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dispatchd_benches::*;
use engine::{EngineConfig, Event, EventKind, JobId, Millis, NewJob, ResidentId, WorkerId};

fn matching(c: &mut Criterion) {
    let skills = skill_table();
    let fresh_after = NOW.minus_secs(30);
    for shape in [Shape::Dense, Shape::Sparse, Shape::Rare] {
        let mut g = c.benchmark_group(format!("match/{}", shape.name()));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        for n in sizes_from_env() {
            let s = scenario(shape, n, 4096);
            let e = build_engine(&s, EngineConfig::default());
            let rtree = RTreeBaseline::new(&s, 20_000.0);
            let brute = BruteForce::new(&s, 20_000.0);
            let qs = &s.queries;
            let mut i = 0;
            g.bench_function(BenchmarkId::new("dispatchd", n), |b| {
                b.iter(|| {
                    i = (i + 1) % qs.len();
                    black_box(engine_nearest(&e, &skills, qs[i]))
                })
            });
            g.bench_function(BenchmarkId::new("rtree", n), |b| {
                b.iter(|| {
                    i = (i + 1) % qs.len();
                    black_box(rtree.nearest(qs[i], fresh_after))
                })
            });
            if n <= 100_000 {
                g.bench_function(BenchmarkId::new("brute", n), |b| {
                    b.iter(|| {
                        i = (i + 1) % qs.len();
                        black_box(brute.nearest(qs[i], fresh_after))
                    })
                });
            }
        }
        g.finish();
    }
}

/// Matching a job that needs a part: only workers whose van has it are
/// candidates. Dense fleet; four parts, held by 50 %, 10 %, 1 % and 0.1 %
/// of vans. The common ones are found by the ring search with the van as
/// a candidate filter; one in at most `parts_scan_max` (2 048) vans by
/// measuring the distance to each of them.
fn matching_parts(c: &mut Criterion) {
    let skills = skill_table();
    let mut g = c.benchmark_group("match_parts/dense");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for n in sizes_from_env() {
        let s = scenario(Shape::Dense, n, 4096);
        let e = build_engine(&s, EngineConfig::default());
        let kinds = stock_parts(&e, &s);
        let qs = &s.queries;
        let mut i = 0;
        g.bench_function(BenchmarkId::new("no_parts", n), |b| {
            b.iter(|| {
                i = (i + 1) % qs.len();
                black_box(engine_nearest(&e, &skills, qs[i]))
            })
        });
        for (label, lines) in &kinds {
            g.bench_function(BenchmarkId::new(*label, n), |b| {
                b.iter(|| {
                    i = (i + 1) % qs.len();
                    let q = qs[i];
                    black_box(
                        e.nearest_matchable_carrying(
                            q.lat,
                            q.lng,
                            &skills[q.skill as usize],
                            lines,
                            NOW,
                        )
                        .unwrap(),
                    )
                })
            });
        }
    }
    g.finish();
}

fn position_updates(c: &mut Criterion) {
    let s = scenario(Shape::Dense, 100_000, 0);
    let e = build_engine(&s, EngineConfig::default());
    let ids: Vec<WorkerId> = (0..s.workers.len()).map(worker_id).collect();
    let mut pos: Vec<(f64, f64)> = s.workers.iter().map(|w| (w.lat, w.lng)).collect();
    let mut rng = Rng(99);
    let steps = walk_steps(&mut rng);
    let mut g = c.benchmark_group("position_update");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    let (mut i, mut k) = (0usize, 0usize);
    let mut t = NOW.0;
    g.bench_function("few_metres/100k", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            k = (k + 1) % steps.len();
            t += 1;
            let p = &mut pos[i];
            p.0 += steps[k].0;
            p.1 += steps[k].1;
            black_box(e.update_position(&ids[i], p.0, p.1, Millis(t)).unwrap())
        })
    });
    g.finish();
}

fn lifecycle(c: &mut Criterion) {
    let s = scenario(Shape::Dense, 10_000, 1024);
    let e = build_engine(&s, EngineConfig::default());
    let resident = ResidentId::from("r");
    let mut n = 0u64;
    c.bench_function("lifecycle/create_accept_arrive_complete", |b| {
        b.iter(|| {
            n += 1;
            let q = s.queries[n as usize % s.queries.len()];
            let id = JobId::from(format!("j{n}"));
            let ev = e
                .create_job(
                    NewJob {
                        id: id.clone(),
                        resident_id: resident.clone(),
                        lat: q.lat,
                        lng: q.lng,
                        skill: skill(q.skill),
                        description: String::new(),
                    },
                    NOW,
                )
                .unwrap();
            let w = ev.iter().find_map(|e| match &e.kind {
                EventKind::JobOffered { worker_id, .. } => Some(worker_id.clone()),
                _ => None,
            });
            match w {
                Some(w) => {
                    e.accept(&id, &w, NOW).unwrap();
                    e.arrive(&id, &w, NOW).unwrap();
                    black_box(e.complete(&id, &w, NOW.plus_secs(600)).unwrap());
                }
                None => {
                    black_box(e.cancel(&id, None, NOW).unwrap());
                }
            }
        })
    });
}

fn codecs(c: &mut Criterion) {
    let ev = Event {
        seq: 123_456,
        at: NOW,
        kind: EventKind::JobOffered {
            job_id: JobId::from("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"),
            worker_id: WorkerId::from("0193a1b2-0000-7e4f-8a9b-0c1d2e3f4a5b"),
            expires_at: NOW.plus_secs(15),
            distance_m: 1234.5,
        },
    };
    let json = serde_json::to_vec(&ev).unwrap();
    let mp = rmp_serde::to_vec_named(&ev).unwrap();
    let mut g = c.benchmark_group("codec/event");
    g.bench_function("json_encode", |b| {
        b.iter(|| black_box(serde_json::to_vec(&ev).unwrap()))
    });
    g.bench_function("msgpack_encode", |b| {
        b.iter(|| black_box(rmp_serde::to_vec_named(&ev).unwrap()))
    });
    g.bench_function("json_decode", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Event>(&json).unwrap()))
    });
    g.bench_function("msgpack_decode", |b| {
        b.iter(|| black_box(rmp_serde::from_slice::<Event>(&mp).unwrap()))
    });
    g.finish();
}

criterion_group!(
    benches,
    matching,
    matching_parts,
    position_updates,
    lifecycle,
    codecs
);
criterion_main!(benches);
