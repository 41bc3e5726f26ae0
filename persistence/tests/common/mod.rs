//! Shared helpers: a small engine workload that produces real events.

#![allow(dead_code)]

use engine::*;

pub fn wid(i: usize) -> WorkerId {
    WorkerId::from(format!("w{i}"))
}

pub const LAT: f64 = 51.5074;
pub const LNG: f64 = -0.1278;

/// Registers `n` connected, available workers around London; returns their events.
pub fn fleet(e: &Engine, n: usize, now: Millis) -> Vec<Event> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(
            e.register_worker(&wid(i), &[Skill::new("fix").unwrap()], now)
                .unwrap(),
        );
        e.update_position(&wid(i), LAT + i as f64 * 0.001, LNG, now)
            .unwrap();
        e.set_connected(&wid(i), true, now).unwrap();
        out.extend(e.set_available(&wid(i), true, now).unwrap());
    }
    out
}

pub fn new_job(id: &str, k: u64) -> NewJob {
    NewJob {
        id: JobId::from(id),
        resident_id: ResidentId::from("r"),
        lat: LAT + (k % 17) as f64 * 0.0007,
        lng: LNG + (k % 13) as f64 * 0.0009,
        skill: Skill::new("fix").unwrap(),
        description: format!("job {k}"),
    }
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "dispatchd-{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
