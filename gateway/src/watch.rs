//! The ops `watch` topics (API.md "Ops console"): `fleet` — a snapshot of
//! every worker with a position and its state, then, at most once a
//! second, the workers whose position or state changed — and `jobs` —
//! every `job` message. One diff is computed per tick for all watchers
//! (and only while someone watches), then shared as one `Arc` message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use engine::{Engine, FleetState, FleetWorker, Millis, WorkerId};

use crate::hub::Conn;
use crate::metrics::Metrics;
use crate::wire::{FleetEntry, ServerMsg};

/// A watch topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Fleet,
    Jobs,
}

impl Topic {
    pub fn parse(s: &str) -> Option<Topic> {
        match s {
            "fleet" => Some(Topic::Fleet),
            "jobs" => Some(Topic::Jobs),
            _ => None,
        }
    }
}

type Seen = HashMap<WorkerId, (f64, f64, FleetState)>;

#[derive(Default)]
struct FleetWatch {
    conns: HashMap<u64, Arc<Conn>>,
    /// What every fleet watcher has been told (the last tick's view).
    last: Seen,
}

#[derive(Default)]
pub struct Watchers {
    fleet: Mutex<FleetWatch>,
    jobs: DashMap<u64, Arc<Conn>>,
}

fn entry(w: &FleetWorker) -> FleetEntry {
    FleetEntry {
        id: w.id.as_str().to_owned(),
        lat: w.lat,
        lng: w.lng,
        state: w.state.as_str().to_owned(),
    }
}

impl Watchers {
    /// Adds `conn` to `topic`; a fleet watcher gets the snapshot first.
    pub fn watch(
        &self,
        topic: Topic,
        conn: &Arc<Conn>,
        engine: &Engine,
        now: Millis,
        metrics: &Metrics,
    ) {
        match topic {
            Topic::Jobs => {
                self.jobs.insert(conn.id, conn.clone());
            }
            Topic::Fleet => {
                let workers = engine.fleet(now);
                let mut f = self.fleet.lock().expect("fleet watch");
                if f.conns.is_empty() {
                    f.last = workers
                        .iter()
                        .map(|w| (w.id.clone(), (w.lat, w.lng, w.state)))
                        .collect();
                }
                f.conns.insert(conn.id, conn.clone());
                conn.send(
                    Arc::new(ServerMsg::Fleet {
                        workers: workers.iter().map(entry).collect(),
                        full: true,
                    }),
                    metrics,
                );
            }
        }
    }

    pub fn unwatch(&self, topic: Topic, conn_id: u64) {
        match topic {
            Topic::Jobs => {
                self.jobs.remove(&conn_id);
            }
            Topic::Fleet => {
                let mut f = self.fleet.lock().expect("fleet watch");
                f.conns.remove(&conn_id);
                if f.conns.is_empty() {
                    f.last = HashMap::new();
                }
            }
        }
    }

    /// A closed connection watches nothing.
    pub fn forget(&self, conn_id: u64) {
        self.unwatch(Topic::Jobs, conn_id);
        self.unwatch(Topic::Fleet, conn_id);
    }

    /// Connections watching `jobs`.
    pub fn job_watchers(&self) -> Vec<Arc<Conn>> {
        if self.jobs.is_empty() {
            return Vec::new();
        }
        self.jobs.iter().map(|e| e.value().clone()).collect()
    }

    /// Sends fleet watchers the workers that changed since the last tick
    /// (called once a second).
    pub fn fleet_tick(&self, engine: &Engine, now: Millis, metrics: &Metrics) {
        if self.fleet.lock().expect("fleet watch").conns.is_empty() {
            return;
        }
        let workers = engine.fleet(now);
        let mut f = self.fleet.lock().expect("fleet watch");
        if f.conns.is_empty() {
            return;
        }
        let mut changed = Vec::new();
        for w in &workers {
            let now_is = (w.lat, w.lng, w.state);
            if f.last.get(&w.id) != Some(&now_is) {
                changed.push(entry(w));
                f.last.insert(w.id.clone(), now_is);
            }
        }
        if changed.is_empty() {
            return;
        }
        let m = Arc::new(ServerMsg::Fleet {
            workers: changed,
            full: false,
        });
        for c in f.conns.values() {
            c.send(m.clone(), metrics);
        }
    }
}
