//! Commands: every change to dispatch state as a value. A single node
//! applies them to its engine and logs the resulting events; in a cluster
//! they go through the Redis stream and every node applies them in the same
//! order (the engine is deterministic: time is part of the command).

use std::collections::HashMap;

use engine::{Engine, EngineError, Event, JobId, Millis, NewJob, Skill, WorkerId};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Why a command changed nothing: the engine refused it, or it could not
/// be made durable / shared.
#[derive(Debug)]
pub enum ExecError {
    Engine(EngineError),
    Api(ApiError),
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> ApiError {
        match e {
            ExecError::Engine(e) => e.into(),
            ExecError::Api(e) => e,
        }
    }
}

/// A worker's step on a job it was offered or holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerStep {
    Accept,
    Decline,
    Arrive,
    Complete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    RegisterWorker {
        worker: WorkerId,
        skills: Vec<Skill>,
    },
    /// Position reports, batched.
    Positions(Vec<(WorkerId, f64, f64)>),
    Available {
        worker: WorkerId,
        on: bool,
    },
    /// A worker's socket opened on `node`.
    Connected {
        worker: WorkerId,
        node: String,
    },
    /// …and closed; ignored unless `node` still holds it.
    Disconnected {
        worker: WorkerId,
        node: String,
    },
    /// `node` is gone: every worker it held is disconnected.
    NodeDown {
        node: String,
    },
    CreateJob(NewJob),
    Step {
        job: JobId,
        worker: WorkerId,
        step: WorkerStep,
    },
    Cancel {
        job: JobId,
        reason: Option<String>,
    },
    Retry {
        job: JobId,
    },
    Tick,
}

/// Which node holds each connected worker's socket (cluster presence),
/// kept by applying the same commands on every node.
#[derive(Debug, Default)]
pub struct Holders(HashMap<WorkerId, String>);

impl Holders {
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a WorkerId> + 'a {
        self.0
            .iter()
            .filter(move |(_, n)| *n == node)
            .map(|(w, _)| w)
    }

    pub fn nodes(&self) -> std::collections::BTreeSet<String> {
        self.0.values().cloned().collect()
    }

    /// For the cluster snapshot: presence is replicated state too.
    pub fn entries(&self) -> Vec<(WorkerId, String)> {
        let mut v: Vec<_> = self.0.iter().map(|(w, n)| (w.clone(), n.clone())).collect();
        v.sort();
        v
    }

    pub fn from_entries(v: Vec<(WorkerId, String)>) -> Holders {
        Holders(v.into_iter().collect())
    }
}

impl Op {
    /// [`Op::apply`], timing job creation (the match) into
    /// `dispatchd_match_duration_seconds`.
    pub fn apply_timed(
        self,
        engine: &Engine,
        now: Millis,
        holders: &mut Holders,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Vec<Event>, EngineError> {
        let create = matches!(self, Op::CreateJob(_));
        let started = std::time::Instant::now();
        let result = self.apply(engine, now, holders);
        if create {
            metrics
                .match_latency
                .record(started.elapsed().as_secs_f64());
        }
        result
    }

    /// Applies the command at `now`. Deterministic: the same commands in
    /// the same order give the same state and events on every node.
    pub fn apply(
        self,
        engine: &Engine,
        now: Millis,
        holders: &mut Holders,
    ) -> Result<Vec<Event>, EngineError> {
        match self {
            Op::RegisterWorker { worker, skills } => engine.register_worker(&worker, &skills, now),
            Op::Positions(batch) => {
                let mut out = Vec::new();
                for (w, lat, lng) in batch {
                    // One bad report does not spoil the batch (they were
                    // validated before submission; a worker may be unknown
                    // on a node that restored an older snapshot).
                    if let Ok(ev) = engine.update_position(&w, lat, lng, now) {
                        out.extend(ev);
                    }
                }
                Ok(out)
            }
            Op::Available { worker, on } => engine.set_available(&worker, on, now),
            Op::Connected { worker, node } => {
                let events = engine.set_connected(&worker, true, now);
                holders.0.insert(worker, node);
                events
            }
            Op::Disconnected { worker, node } => {
                if holders.0.get(&worker) != Some(&node) {
                    return Ok(Vec::new());
                }
                holders.0.remove(&worker);
                engine.set_connected(&worker, false, now)
            }
            Op::NodeDown { node } => {
                let gone: Vec<WorkerId> = holders.of_node(&node).cloned().collect();
                let mut out = Vec::new();
                for w in gone {
                    holders.0.remove(&w);
                    out.extend(engine.set_connected(&w, false, now).unwrap_or_default());
                }
                Ok(out)
            }
            Op::CreateJob(job) => engine.create_job(job, now),
            Op::Step { job, worker, step } => match step {
                WorkerStep::Accept => engine.accept(&job, &worker, now),
                WorkerStep::Decline => engine.decline(&job, &worker, now),
                WorkerStep::Arrive => engine.arrive(&job, &worker, now),
                WorkerStep::Complete => engine.complete(&job, &worker, now),
            },
            Op::Cancel { job, reason } => engine.cancel(&job, reason, now),
            Op::Retry { job } => engine.retry(&job, now),
            Op::Tick => Ok(engine.tick(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::ResidentId;

    fn s(x: &str) -> Skill {
        Skill::new(x).unwrap()
    }

    /// The cluster's premise: two engines fed the same commands agree.
    #[test]
    fn same_commands_same_state() {
        let ops: Vec<(i64, Op)> = {
            let mut v = Vec::new();
            for i in 0..20 {
                let w = WorkerId::from(format!("w{i}"));
                v.push((
                    0,
                    Op::RegisterWorker {
                        worker: w.clone(),
                        skills: vec![s("a")],
                    },
                ));
                v.push((
                    1,
                    Op::Connected {
                        worker: w.clone(),
                        node: format!("n{}", i % 3),
                    },
                ));
                v.push((
                    2,
                    Op::Available {
                        worker: w.clone(),
                        on: true,
                    },
                ));
                v.push((3, Op::Positions(vec![(w, 50.0 + i as f64 * 0.001, 8.0)])));
            }
            for j in 0..30 {
                v.push((
                    10 + j,
                    Op::CreateJob(NewJob {
                        id: JobId::from(format!("j{j}")),
                        resident_id: ResidentId::from("r"),
                        lat: 50.0 + (j % 7) as f64 * 0.002,
                        lng: 8.0,
                        skill: s("a"),
                        description: String::new(),
                    }),
                ));
            }
            v.push((100, Op::NodeDown { node: "n1".into() }));
            v.push((20_000, Op::Tick));
            v
        };
        let run = || {
            let e = Engine::new(engine::EngineConfig::default()).unwrap();
            let mut h = Holders::default();
            let mut events = Vec::new();
            for (t, op) in &ops {
                events.extend(
                    op.clone()
                        .apply(&e, Millis(1_700_000_000_000 + t), &mut h)
                        .unwrap_or_default(),
                );
            }
            (
                events,
                e.list_jobs(&engine::JobQuery {
                    viewer: engine::Viewer::Ops,
                    status: None,
                    limit: 500,
                }),
            )
        };
        let (a_events, a_jobs) = run();
        let (b_events, b_jobs) = run();
        assert_eq!(a_events, b_events);
        assert_eq!(a_jobs, b_jobs);
        assert!(a_events
            .iter()
            .any(|e| matches!(e.kind, engine::EventKind::JobOffered { .. })));
    }
}
