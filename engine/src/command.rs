//! Commands: every change to engine state as a value, and the one
//! function that applies them. Both backends run commands through here: the
//! embedded store applies each as it arrives (its events reach the log
//! through the engine's [`EventSink`](crate::EventSink)); a cluster appends
//! it to a shared stream and every node applies the stream in order. The
//! engine is deterministic — time is part of the command — so every node
//! reaches the same state with the same events.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, NewJob};
use crate::error::EngineError;
use crate::event::Event;
use crate::job::{Job, Step};
use crate::maintenance::{Log, Schedule, SchedulePatch};
use crate::notify::{NotifyPrefs, Webhook};
use crate::property::Property;
use crate::stock::{Movement, Part, PartPatch, ReorderStep};
use crate::types::{JobId, Millis, Skill, WorkerId};

/// A worker's step on a job it was offered or holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerStep {
    Accept,
    Decline,
    Arrive,
    Complete,
}

impl WorkerStep {
    /// The path segment naming it (`/v1/jobs/{id}/accept` …).
    pub fn parse(s: &str) -> Option<WorkerStep> {
        match s {
            "accept" => Some(WorkerStep::Accept),
            "decline" => Some(WorkerStep::Decline),
            "arrive" => Some(WorkerStep::Arrive),
            "complete" => Some(WorkerStep::Complete),
            _ => None,
        }
    }

    /// The engine's step for it.
    pub fn engine_step(self) -> Step {
        match self {
            WorkerStep::Accept => Step::Accept,
            WorkerStep::Decline => Step::Revoke,
            WorkerStep::Arrive => Step::Arrive,
            WorkerStep::Complete => Step::Complete,
        }
    }
}

/// Node a connection belongs to on a single node (presence is the same
/// command in both modes; a single node is simply the only holder).
pub const LOCAL_NODE: &str = "local";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    RegisterWorker {
        worker: WorkerId,
        skills: Vec<Skill>,
    },
    /// The name a worker's residents see.
    NameWorker {
        worker: WorkerId,
        name: String,
    },
    /// Position reports, batched (soft state: never logged one by one).
    Positions(Vec<(WorkerId, f64, f64)>),
    Available {
        worker: WorkerId,
        on: bool,
    },
    /// A worker's first socket opened on `node`.
    Connected {
        worker: WorkerId,
        node: String,
    },
    /// …and its last closed; ignored unless `node` still holds it.
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
    /// Ops retry a dead letter; `archived` carries it when it had left
    /// memory (it comes back in the same command).
    Retry {
        job: JobId,
        #[serde(default)]
        archived: Option<Box<Job>>,
    },
    /// Finished jobs leave memory for the archive.
    Archive {
        jobs: Vec<JobId>,
    },
    Tick,
    /// `PUT /v1/me/notifications`.
    SetNotifyPrefs {
        user: String,
        prefs: NotifyPrefs,
    },
    /// `POST /v1/ops/webhooks` (the id and secret chosen by the caller).
    AddWebhook(Webhook),
    RemoveWebhook {
        id: String,
    },
    /// A delivery met 410 Gone.
    DisableWebhook {
        id: String,
    },
    CreateProperty(Property),
    /// A job at a property (its position is the property's).
    CreatePropertyJob {
        job: NewJob,
        property_id: String,
    },
    CreateSchedule(Box<Schedule>),
    UpdateSchedule {
        id: String,
        patch: Box<SchedulePatch>,
    },
    DeleteSchedule {
        id: String,
    },
    /// `POST /v1/logs` (the log's property is the schedule's).
    WriteLog(Box<Log>),
    /// The due/overdue check (`daily`: the scheduled run).
    MaintenanceCheck {
        daily: bool,
    },
    /// A job with options: at a property, needing parts, its urgency and
    /// the triage that classified it (computed by the node that took the
    /// request, so every node stores the same).
    CreateJobWith {
        job: NewJob,
        opts: Box<crate::jobs::JobOptions>,
    },
    /// `POST /v1/jobs/{id}/rating` (`archived`: the job, if it left memory).
    RateJob {
        job: JobId,
        resident: crate::ResidentId,
        stars: u8,
        comment: Option<String>,
        #[serde(default)]
        archived: Option<Box<Job>>,
    },
    /// `POST /v1/payments`.
    RecordPayment {
        payment: Box<crate::payment::Payment>,
        #[serde(default)]
        archived: Option<Box<Job>>,
        /// The provider's `webhook-id` (none for ops).
        #[serde(default)]
        webhook_id: Option<String>,
    },
    /// `POST /v1/ops/triage/examples`.
    AddTriageExample(crate::triage::Example),
    /// `POST /v1/attachments`: the record of bytes already on disk.
    AddAttachment {
        attachment: Box<crate::attachment::Attachment>,
        /// `[attachments] quota_bytes_per_user` when it was sent.
        quota: u64,
    },
    CreatePart(Part),
    UpdatePart {
        id: String,
        patch: Box<PartPatch>,
    },
    DeletePart {
        id: String,
    },
    MoveStock(Box<Movement>),
    SetStockRule {
        part_id: String,
        location: String,
        reorder_point: i64,
        reorder_qty: i64,
    },
    ReorderCheck,
    ReorderStep {
        id: String,
        step: ReorderStep,
        by: String,
        /// `received` from a depot (a transfer) rather than a supplier.
        #[serde(default)]
        from: Option<String>,
    },
}

/// What an applied command did: its events and, for a job command, the job
/// as it stood right after — what the caller answers with.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub events: Vec<Event>,
    pub job: Option<Job>,
}

impl From<Vec<Event>> for Applied {
    fn from(events: Vec<Event>) -> Applied {
        Applied { events, job: None }
    }
}

/// Which node holds each connected worker's socket, kept by applying the
/// same commands everywhere (replicated state, in the cluster snapshot).
#[derive(Debug, Default)]
pub struct Holders(HashMap<WorkerId, String>);

impl Holders {
    pub fn of_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a WorkerId> + 'a {
        self.0
            .iter()
            .filter(move |(_, n)| *n == node)
            .map(|(w, _)| w)
    }

    pub fn nodes(&self) -> BTreeSet<String> {
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
    /// Metric and log label.
    pub fn name(&self) -> &'static str {
        match self {
            Op::RegisterWorker { .. } => "register_worker",
            Op::NameWorker { .. } => "name_worker",
            Op::Positions(_) => "positions",
            Op::Available { .. } => "available",
            Op::Connected { .. } => "connected",
            Op::Disconnected { .. } => "disconnected",
            Op::NodeDown { .. } => "node_down",
            Op::CreateJob(_) => "create_job",
            Op::Step { .. } => "step",
            Op::Cancel { .. } => "cancel",
            Op::Retry { .. } => "retry",
            Op::Archive { .. } => "archive",
            Op::Tick => "tick",
            Op::SetNotifyPrefs { .. } => "set_notify_prefs",
            Op::AddWebhook(_) => "add_webhook",
            Op::RemoveWebhook { .. } => "remove_webhook",
            Op::DisableWebhook { .. } => "disable_webhook",
            Op::CreateProperty(_) => "create_property",
            Op::CreatePropertyJob { .. } => "create_job",
            Op::CreateSchedule(_) => "create_schedule",
            Op::UpdateSchedule { .. } => "update_schedule",
            Op::DeleteSchedule { .. } => "delete_schedule",
            Op::WriteLog(_) => "write_log",
            Op::MaintenanceCheck { .. } => "maintenance_check",
            Op::CreateJobWith { .. } => "create_job",
            Op::AddTriageExample(_) => "add_triage_example",
            Op::AddAttachment { .. } => "add_attachment",
            Op::RateJob { .. } => "rate_job",
            Op::RecordPayment { .. } => "record_payment",
            Op::CreatePart(_) => "create_part",
            Op::UpdatePart { .. } => "update_part",
            Op::DeletePart { .. } => "delete_part",
            Op::MoveStock(_) => "move_stock",
            Op::SetStockRule { .. } => "set_stock_rule",
            Op::ReorderCheck => "reorder_check",
            Op::ReorderStep { .. } => "reorder_step",
        }
    }

    /// Applies the command at `now`. Deterministic: the same commands in
    /// the same order give the same state and events on every node.
    pub fn apply(
        self,
        engine: &Engine,
        now: Millis,
        holders: &mut Holders,
    ) -> Result<Applied, EngineError> {
        let job = |r: crate::engine::JobReceipt| Applied {
            events: r.events,
            job: Some(r.job),
        };
        match self {
            Op::RegisterWorker { worker, skills } => engine
                .register_worker(&worker, &skills, now)
                .map(Applied::from),
            Op::NameWorker { worker, name } => {
                engine.name_worker(&worker, &name, now).map(Applied::from)
            }
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
                Ok(out.into())
            }
            Op::Available { worker, on } => {
                engine.set_available(&worker, on, now).map(Applied::from)
            }
            Op::Connected { worker, node } => {
                let events = engine.set_connected(&worker, true, now);
                holders.0.insert(worker, node);
                events.map(Applied::from)
            }
            Op::Disconnected { worker, node } => {
                if holders.0.get(&worker) != Some(&node) {
                    return Ok(Applied::default());
                }
                holders.0.remove(&worker);
                engine.set_connected(&worker, false, now).map(Applied::from)
            }
            Op::NodeDown { node } => {
                let gone: Vec<WorkerId> = holders.of_node(&node).cloned().collect();
                let mut out = Vec::new();
                for w in gone {
                    holders.0.remove(&w);
                    out.extend(engine.set_connected(&w, false, now).unwrap_or_default());
                }
                Ok(out.into())
            }
            Op::CreateJob(new) => engine.create_job_receipt(new, now).map(job),
            Op::Step {
                job: id,
                worker,
                step,
            } => engine
                .worker_step_receipt(&id, &worker, step.engine_step(), now)
                .map(job),
            Op::Cancel { job: id, reason } => engine.cancel_receipt(&id, reason, now).map(job),
            Op::Retry {
                job: id,
                archived: None,
            } => engine.retry_receipt(&id, now).map(job),
            Op::Retry {
                archived: Some(archived),
                ..
            } => engine.retry_archived_receipt(*archived, now).map(job),
            Op::Archive { jobs } => engine.archive(&jobs, now).map(Applied::from),
            Op::Tick => Ok(engine.tick(now).into()),
            Op::SetNotifyPrefs { user, prefs } => engine
                .set_notify_prefs(&user, prefs, now)
                .map(Applied::from),
            Op::AddWebhook(w) => engine.add_webhook(w, now).map(Applied::from),
            Op::RemoveWebhook { id } => engine.remove_webhook(&id, now).map(Applied::from),
            Op::DisableWebhook { id } => engine.disable_webhook(&id, now).map(Applied::from),
            Op::CreateProperty(p) => engine.create_property(p, now).map(Applied::from),
            Op::CreatePropertyJob {
                job: new,
                property_id,
            } => engine
                .create_job_at_property(new, &property_id, Vec::new(), now)
                .map(job),
            Op::CreateSchedule(s) => engine.create_schedule(*s, now).map(Applied::from),
            Op::UpdateSchedule { id, patch } => {
                engine.update_schedule(&id, *patch, now).map(Applied::from)
            }
            Op::DeleteSchedule { id } => engine.delete_schedule(&id, now).map(Applied::from),
            Op::WriteLog(log) => engine.write_log(*log, now).map(Applied::from),
            Op::MaintenanceCheck { daily } => {
                engine.maintenance_check(daily, now).map(Applied::from)
            }
            Op::CreateJobWith { job: new, opts } => {
                engine.create_job_opts(new, *opts, now).map(job)
            }
            Op::AddTriageExample(e) => engine.add_triage_example(e, now).map(Applied::from),
            Op::AddAttachment { attachment, quota } => engine
                .add_attachment(*attachment, quota, now)
                .map(Applied::from),
            Op::RateJob {
                job: id,
                resident,
                stars,
                comment,
                archived,
            } => engine
                .rate(&id, &resident, stars, comment, archived.map(|j| *j), now)
                .map(job),
            Op::RecordPayment {
                payment,
                archived,
                webhook_id,
            } => engine
                .record_payment(*payment, webhook_id, archived.map(|j| *j), now)
                .map(|r| job(r.receipt)),
            Op::CreatePart(p) => engine.create_part(p, now).map(Applied::from),
            Op::UpdatePart { id, patch } => engine.update_part(&id, *patch, now).map(Applied::from),
            Op::DeletePart { id } => engine.delete_part(&id, now).map(Applied::from),
            Op::MoveStock(m) => engine.move_stock(*m, now).map(Applied::from),
            Op::SetStockRule {
                part_id,
                location,
                reorder_point,
                reorder_qty,
            } => engine
                .set_stock_rule(&part_id, &location, reorder_point, reorder_qty, now)
                .map(Applied::from),
            Op::ReorderCheck => engine.reorder_check(now).map(Applied::from),
            Op::ReorderStep { id, step, by, from } => engine
                .reorder_step(&id, step, &by, from, now)
                .map(Applied::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResidentId;
    use crate::{JobId, Millis, NewJob, Skill, WorkerId};

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
            // Fewer jobs than workers: some are idle when their node goes down.
            for j in 0..10 {
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
            let e = Engine::new(crate::EngineConfig::default()).unwrap();
            let mut h = Holders::default();
            let mut events = Vec::new();
            for (t, op) in &ops {
                if let Ok(a) = op.clone().apply(&e, Millis(1_700_000_000_000 + t), &mut h) {
                    events.extend(a.events);
                }
            }
            (
                events,
                e.list_jobs(&crate::JobQuery {
                    viewer: crate::Viewer::Ops,
                    status: None,
                    limit: 500,
                }),
            )
        };
        // Each run has its own randomly keyed maps, as each node does.
        let (a_events, a_jobs) = run();
        for _ in 0..8 {
            let (b_events, b_jobs) = run();
            assert_eq!(a_events, b_events);
            assert_eq!(a_jobs, b_jobs);
        }
        assert!(a_events
            .iter()
            .any(|e| matches!(e.kind, crate::EventKind::JobOffered { .. })));
    }
}
