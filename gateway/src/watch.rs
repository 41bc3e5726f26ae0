//! The ops `watch` topics (API.md "Ops console"): `fleet` — a snapshot of
//! every worker with a position and its state, then, at most once a
//! second, the workers whose position or state changed — and `jobs` —
//! every `job` message. One diff is computed per tick for all watchers
//! (and only while someone watches), then shared as `Arc` messages of at
//! most [`CHUNK`] workers each (a snapshot of 10 000 workers is ten
//! messages of ~60 KiB, each well under a socket's write-buffer limit; only
//! the first of a snapshot says `full`). Positions are rounded to 1e-5°
//! (about a metre): enough for a map, a third fewer bytes.

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

/// Most workers in one `fleet` message.
pub const CHUNK: usize = 1000;

type Seen = HashMap<WorkerId, (f64, f64, FleetState)>;

fn round(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

/// `entries` as `fleet` messages of at most [`CHUNK`]; the first `full`
/// when it is a snapshot.
fn messages(entries: Vec<FleetEntry>, full: bool) -> Vec<Arc<ServerMsg>> {
    let mut out = Vec::with_capacity(entries.len() / CHUNK + 1);
    let mut rest = entries.into_iter().peekable();
    let mut first = true;
    while first || rest.peek().is_some() {
        let workers: Vec<FleetEntry> = rest.by_ref().take(CHUNK).collect();
        out.push(Arc::new(ServerMsg::Fleet {
            workers,
            full: full && first,
        }));
        first = false;
    }
    out
}

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
        lat: round(w.lat),
        lng: round(w.lng),
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
                        .map(|w| (w.id.clone(), (round(w.lat), round(w.lng), w.state)))
                        .collect();
                }
                f.conns.insert(conn.id, conn.clone());
                for m in messages(workers.iter().map(entry).collect(), true) {
                    if !conn.send(m, metrics) {
                        break;
                    }
                }
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
            let now_is = (round(w.lat), round(w.lng), w.state);
            if f.last.get(&w.id) != Some(&now_is) {
                changed.push(entry(w));
                f.last.insert(w.id.clone(), now_is);
            }
        }
        if changed.is_empty() {
            return;
        }
        let ms = messages(changed, false);
        for c in f.conns.values() {
            for m in &ms {
                if !c.send(m.clone(), metrics) {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(i: usize) -> FleetEntry {
        FleetEntry {
            id: format!("w{i}"),
            lat: 1.0,
            lng: 2.0,
            state: "available".into(),
        }
    }

    #[test]
    fn a_snapshot_comes_in_chunks_and_only_its_first_is_full() {
        let ms = messages((0..2 * CHUNK + 1).map(e).collect(), true);
        let parts: Vec<(usize, bool)> = ms
            .iter()
            .map(|m| match &**m {
                ServerMsg::Fleet { workers, full } => (workers.len(), *full),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(parts, vec![(CHUNK, true), (CHUNK, false), (1, false)]);
        // An empty fleet still gets its (empty) snapshot.
        let ms = messages(Vec::new(), true);
        assert!(matches!(&*ms[0], ServerMsg::Fleet { workers, full: true } if workers.is_empty()));
        assert_eq!(round(51.123456789), 51.12346);
    }
}
