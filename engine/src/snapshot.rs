//! Export and rebuild the whole engine state, and replay events on top.
//!
//! A snapshot is a plain serde value: persistence encodes it, stores it with
//! the sequence number it covers, and on start hands it back with the events
//! logged after it.

use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::event::Event;
use crate::geo::LatLng;
use crate::job::{Job, JobStatus};
use crate::queries::view;
use crate::types::{Millis, Skill, WorkerId};
use crate::worker::{Fix, AVAILABLE, CONNECTED, RESERVED};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last event this snapshot includes.
    pub last_seq: u64,
    pub workers: Vec<WorkerSnapshot>,
    /// Every job, oldest first.
    pub jobs: Vec<Job>,
    /// When each waiting job (by creation order) was last searched for, so
    /// a restored engine re-searches on the same ticks as the one it copies
    /// (nodes of a cluster must stay in step). Absent in older snapshots.
    #[serde(default)]
    pub last_searches: Vec<(u64, Millis)>,
    /// The last job's creation number: archived jobs are not in `jobs`, and
    /// new jobs must still number after them. Absent in older snapshots.
    #[serde(default)]
    pub last_job: u64,
    /// Notification preferences and webhook endpoints. Absent in older
    /// snapshots.
    #[serde(default)]
    pub notify: crate::notify::NotifyState,
    /// Properties. Absent in older snapshots.
    #[serde(default)]
    pub properties: crate::property::PropertyState,
    #[serde(default)]
    pub maintenance: crate::maintenance::MaintenanceState,
    #[serde(default)]
    pub stock: crate::stock::StockState,
    #[serde(default)]
    pub triage: crate::triage::TriageState,
    /// Each user's stored upload bytes.
    #[serde(default)]
    pub attachment_usage: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    pub id: WorkerId,
    pub skills: Vec<Skill>,
    pub connected: bool,
    pub available: bool,
    /// Last position: soft state, carried so a restart can match at once.
    pub position: Option<PositionSnapshot>,
    /// The name residents see (`WorkerNamed`).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PositionSnapshot {
    pub lat: f64,
    pub lng: f64,
    pub at: Millis,
}

impl Engine {
    /// A consistent copy of the state: taken under the job lock, so no job
    /// event is half in it.
    pub fn snapshot(&self) -> Snapshot {
        let t = self.jobs.lock();
        let mut workers: Vec<WorkerSnapshot> = self
            .workers
            .iter()
            .map(|e| {
                let v = view(e.value());
                WorkerSnapshot {
                    id: v.id,
                    skills: v.skills,
                    connected: v.connected,
                    available: v.available,
                    position: v
                        .position
                        .map(|(lat, lng, at)| PositionSnapshot { lat, lng, at }),
                    name: v.name,
                }
            })
            .collect();
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        Snapshot {
            last_seq: t.last_event,
            workers,
            jobs: t.jobs.values().cloned().collect(),
            last_searches: t.waiting.iter().map(|(s, w)| (*s, w.last_search)).collect(),
            last_job: t.last_job,
            notify: t.notify.clone(),
            properties: t.properties.clone(),
            maintenance: t.maintenance.clone(),
            stock: t.stock.clone(),
            triage: t.triage.clone(),
            attachment_usage: t.attachment_usage.clone(),
        }
    }

    /// Rebuilds an engine from a snapshot, checking that it is consistent.
    pub fn restore(cfg: EngineConfig, snap: &Snapshot) -> Result<Engine, EngineError> {
        let engine = Engine::new(cfg).map_err(|e| EngineError::Corrupt(e.to_string()))?;
        for w in &snap.workers {
            engine.register_locked(&w.id, &w.skills);
            let shared = engine.workers.get(&w.id).expect("just registered").clone();
            let mut flags = 0;
            if w.connected {
                flags |= CONNECTED;
            }
            if w.available {
                flags |= AVAILABLE;
            }
            shared.set_flag(flags, true);
            *shared.name.write() = w.name.as_deref().map(Into::into);
            if let Some(p) = w.position {
                let ll = LatLng::new(p.lat, p.lng)
                    .map_err(|_| EngineError::Corrupt(format!("worker {} position", w.id)))?;
                let fix = Fix {
                    unit: ll.to_unit(),
                    lat: p.lat,
                    lng: p.lng,
                    at: p.at,
                };
                *shared.fix.lock_write() = fix;
                *shared.place.lock() = Some(engine.index.file(&shared, ll, fix.unit, fix.at));
            }
        }
        {
            let mut t = engine.jobs.lock();
            t.last_event = snap.last_seq;
            t.last_job = snap.last_job;
            t.notify = snap.notify.clone();
            t.properties = snap.properties.clone();
            t.properties.reindex();
            t.maintenance = snap.maintenance.clone();
            t.maintenance.reindex();
            t.stock = snap.stock.clone();
            t.stock.reindex();
            t.attachment_usage = snap.attachment_usage.clone();
            t.triage = snap.triage.clone();
            t.triage.reindex();
            engine.publish_classifier(&mut t.triage);
            engine.publish_estimates(&t.triage, None);
            for job in &snap.jobs {
                engine.insert_restored(&mut t, job.clone())?;
                // Tracking resumes where it was (`apply` keeps it so from here).
                if let (JobStatus::Accepted, Some(w)) = (job.status, &job.worker_id) {
                    let due = match (job.tracked_at, job.accepted_at) {
                        (Some(last), _) => last.0.saturating_add(engine.tracking_every_ms()),
                        (None, Some(accepted)) => accepted.0,
                        (None, None) => i64::MIN,
                    };
                    if let Some(e) = engine.workers.get(w) {
                        e.set_track_due(due);
                    }
                }
            }
            for (seq, at) in &snap.last_searches {
                if let Some(w) = t.waiting.get_mut(seq) {
                    w.last_search = *at;
                }
            }
        }
        Ok(engine)
    }

    /// Applies logged events after the snapshot. Events the snapshot already
    /// covers are skipped; a gap or an impossible event is an error.
    pub fn replay<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<u64, EngineError> {
        let mut t = self.jobs.lock();
        let mut applied = 0;
        for ev in events {
            if ev.seq <= t.last_event {
                continue;
            }
            self.apply(&mut t, ev)?;
            applied += 1;
        }
        Ok(applied)
    }

    /// The sequence number of the last event applied.
    pub fn last_seq(&self) -> u64 {
        self.jobs.lock().last_event
    }

    /// Workers holding an offered or active job, by id: what the
    /// reservation bits say, to check against the jobs.
    pub fn reserved_workers(&self) -> Vec<WorkerId> {
        let mut v: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|e| e.value().state() & RESERVED != 0)
            .map(|e| e.key().clone())
            .collect();
        v.sort();
        v
    }
}
