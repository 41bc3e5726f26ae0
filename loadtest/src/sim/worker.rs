//! A simulated worker: streams positions, answers offers, walks jobs through
//! accept → arrive → complete; in chaos mode it comes back after its node
//! dies and audits its own message stream for double bookings.

use super::resume::{my_jobs, read_resume, reopen_socket};
use super::*;

enum Action {
    Accept(String),
    Decline(String),
    Arrive(String),
    Complete(String),
}

struct WorkerSim {
    sh: Arc<Shared>,
    ws: Socket,
    rng: StdRng,
    /// Client index and user id.
    i: usize,
    id: String,
    token: String,
    /// The job offered or held, if any (what the worker acts on).
    holding: Option<String>,
    actions: VecDeque<(tokio::time::Instant, Action)>,
    pending_acks: HashMap<u64, Instant>,
    next_req: u64,
    /// Chaos mode: the job the worker's own message stream says it holds
    /// (`None` after a resume gap: unknown until the next message).
    view: Option<String>,
    /// The last `seq` seen (resume with `?since=`).
    last_seq: u64,
    /// Steps sent with a `req_id`, awaiting their ack: req → (job, step).
    steps: HashMap<u64, (String, u8)>,
}

pub async fn worker(sh: Arc<Shared>, i: usize) {
    let o = &sh.opts;
    let Profile {
        city,
        mut pos,
        skills,
        mut rng,
    } = profile(o, i);
    let centre = CITIES[city];
    let mut heading = rng.random::<f64>() * std::f64::consts::TAU;
    let id = format!("lt-w-{i}");
    let token = mint(&sh.secret, &id, "worker", Some(&skills));
    let Some(ws) = open_socket(&sh, i, &token).await else {
        return;
    };
    let mut w = WorkerSim {
        sh: sh.clone(),
        ws,
        rng,
        i,
        id,
        token,
        holding: None,
        actions: VecDeque::new(),
        pending_acks: HashMap::new(),
        next_req: 0,
        view: None,
        last_seq: 0,
        steps: HashMap::new(),
    };
    if w.hello(pos).await {
        sh.stats.workers_idle.fetch_add(1, Ordering::Relaxed);
        w.run(&mut pos, &mut heading, centre).await;
    }
    sh.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
}

impl WorkerSim {
    fn chaos(&self) -> bool {
        self.sh.opts.chaos.is_some()
    }

    /// What an app sends on every (re)connect: available, and where it is.
    async fn hello(&mut self, pos: (f64, f64)) -> bool {
        self.send(
            json!({"type": "availability", "available": true, "req_id": "avail"}),
            "out.availability",
        )
        .await
            && self
                .send(
                    json!({"type": "location", "lat": pos.0, "lng": pos.1}),
                    "out.location",
                )
                .await
    }

    fn set_holding(&mut self, job: Option<String>) {
        let was = self.holding.is_some();
        self.holding = job;
        match (was, self.holding.is_some()) {
            (true, false) => {
                self.sh.stats.workers_idle.fetch_add(1, Ordering::Relaxed);
            }
            (false, true) => {
                self.sh.stats.workers_idle.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Chaos mode: the socket went away. Opens it again with `?since=`,
    /// takes the replay, then — the unacknowledged steps being unknown —
    /// re-reads its jobs over HTTP and carries on from what the server has.
    /// False when the run stopped meanwhile.
    async fn reconnect(&mut self, pos: (f64, f64)) -> bool {
        self.sh.stats.msgs.add("chaos.disconnected", 1);
        self.actions.clear();
        self.steps.clear();
        self.pending_acks.clear();
        let sh = self.sh.clone();
        let Some((ws, node)) = reopen_socket(&sh, self.i, &self.token, self.last_seq).await else {
            return false;
        };
        self.ws = ws;
        let mut replayed = Vec::new();
        let gap = if self.last_seq > 0 {
            match read_resume(&sh, &mut self.ws, |v| replayed.push(v)).await {
                Some(g) => g,
                None => return !*sh.stop.borrow() && Box::pin(self.reconnect(pos)).await,
            }
        } else {
            true
        };
        if gap {
            // What was missed is unknown: the stream's view starts afresh.
            self.view = None;
        }
        for v in replayed {
            self.on_message(v);
        }
        if !self.hello(pos).await {
            return !*sh.stop.borrow() && Box::pin(self.reconnect(pos)).await;
        }
        self.resync(node).await;
        true
    }

    /// Chaos mode: sets what the worker holds, and its next step, from the
    /// server's copy of its jobs.
    async fn resync(&mut self, node: usize) {
        let Some(jobs) = my_jobs(&self.sh, node, &self.token).await else {
            return;
        };
        let mine: Vec<(String, String)> = jobs
            .iter()
            .filter(|j| j["worker_id"].as_str() == Some(self.id.as_str()))
            .filter_map(|j| {
                let st = j["status"].as_str()?;
                matches!(st, "offered" | "accepted" | "arrived").then(|| {
                    (
                        j["id"].as_str().unwrap_or_default().to_string(),
                        st.to_string(),
                    )
                })
            })
            .collect();
        if mine.len() > 1 {
            self.sh.stats.double_booked.fetch_add(1, Ordering::Relaxed);
            self.sh.stats.error("double_booked");
        }
        self.actions.clear();
        let Some((job, status)) = mine.into_iter().next() else {
            self.set_holding(None);
            return;
        };
        self.set_holding(Some(job.clone()));
        // Offered to this worker (its offer message may have been lost
        // with the node that sent it).
        if let Some(seq) = self.sh.stats.seq_of(&job) {
            self.sh.stats.track(seq, |t| t.offered = true);
        }
        let o = self.sh.opts.clone();
        match status.as_str() {
            "offered" => self.decide(job),
            "accepted" => self.schedule(o.travel, Action::Arrive(job)),
            _ => self.schedule(o.session, Action::Complete(job)),
        }
    }

    async fn send(&mut self, v: Value, kind: &'static str) -> bool {
        match self.ws.send(Message::Text(v.to_string().into())).await {
            Ok(()) => {
                self.sh.stats.msgs.add(kind, 1);
                true
            }
            Err(_) if self.chaos() => {
                // The node went away: the next read reconnects.
                self.sh.stats.msgs.add("chaos.send_failed", 1);
                false
            }
            Err(_) => {
                self.sh.stats.error("send_failed");
                false
            }
        }
    }

    async fn run(&mut self, pos: &mut (f64, f64), heading: &mut f64, centre: (f64, f64)) {
        let o = self.sh.opts.clone();
        let period = if o.positions_per_s > 0.0 {
            Duration::from_secs_f64(1.0 / o.positions_per_s)
        } else {
            Duration::from_secs(3600)
        };
        let phase = period.mul_f64(self.rng.random::<f64>());
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.sh.stop.clone();
        loop {
            let next_action = self.actions.front().map(|(t, _)| *t);
            tokio::select! {
                m = self.ws.next() => {
                    let v = match m.map(|m| m.map(|m| decode(&self.sh.stats, m))) {
                        Some(Ok(Ok(v))) => v,
                        _ if self.chaos() => {
                            if !self.reconnect(*pos).await { return; }
                            continue;
                        }
                        _ => {
                            self.closed_by_server();
                            return;
                        }
                    };
                    if let Some(v) = v {
                        self.on_message(v);
                    }
                }
                _ = tick.tick() => {
                    walk(&mut self.rng, pos, heading, period.as_secs_f64(), centre);
                    let mut msg = json!({"type": "location", "lat": pos.0, "lng": pos.1});
                    if self.rng.random::<f64>() < o.ack_sample {
                        self.next_req += 1;
                        msg["req_id"] = json!(self.next_req);
                        self.pending_acks.insert(self.next_req, Instant::now());
                    }
                    if !self.send(msg, "out.location").await && !self.chaos() { return; }
                }
                _ = async { tokio::time::sleep_until(next_action.unwrap()).await }, if next_action.is_some() => {
                    let (_, a) = self.actions.pop_front().expect("front exists");
                    if !self.act(a).await && !self.chaos() { return; }
                }
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    let _ = self.ws.close(None).await;
                    // Drain until the server's Close completes the handshake.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = self.ws.next().await {}
                    }).await;
                    return;
                }
            }
        }
    }

    fn closed_by_server(&self) {
        let stopping = *self.sh.stop.borrow();
        if !stopping {
            self.sh.stats.error("socket_closed_by_server");
        }
    }

    fn schedule(&mut self, after: Duration, a: Action) {
        let at = tokio::time::Instant::now() + after;
        let idx = self.actions.partition_point(|(t, _)| *t <= at);
        self.actions.insert(idx, (at, a));
    }

    /// Chaos mode: what the worker's own stream of messages says it holds.
    /// An offer while it still holds another job is a double booking (or
    /// a skipped message); both are failures.
    fn follow_stream(&mut self, v: &Value) {
        if let Some(seq) = v["seq"].as_u64() {
            self.last_seq = self.last_seq.max(seq);
        }
        let stats = &self.sh.stats;
        match v["type"].as_str().unwrap_or("") {
            "offer" => {
                let job = v["job_id"].as_str().unwrap_or_default();
                if self.view.as_deref().is_some_and(|h| h != job) {
                    stats.double_booked.fetch_add(1, Ordering::Relaxed);
                    stats.error("double_booked");
                }
                self.view = Some(job.to_string());
            }
            "offer_revoked" if self.view.as_deref() == v["job_id"].as_str() => self.view = None,
            "job" => {
                let j = &v["job"];
                let still_mine = j["worker_id"].as_str() == Some(self.id.as_str())
                    && matches!(
                        j["status"].as_str(),
                        Some("offered" | "accepted" | "arrived")
                    );
                if self.view.as_deref() == j["id"].as_str() && !still_mine {
                    self.view = None;
                }
            }
            _ => {}
        }
    }

    /// Accept, decline or let lapse an offer of `job` (held).
    fn decide(&mut self, job: String) {
        let o = &self.sh.opts;
        if self.sh.fast.load(Ordering::Relaxed) {
            self.schedule(Duration::ZERO, Action::Accept(job));
            return;
        }
        let (think, decline, ignore) = (o.think, o.decline_ratio, o.ignore_ratio);
        let roll = self.rng.random::<f64>();
        if roll < decline {
            self.schedule(think, Action::Decline(job));
        } else if roll < decline + ignore {
            // Let it expire.
        } else {
            self.schedule(think, Action::Accept(job));
        }
    }

    fn on_message(&mut self, v: Value) {
        let chaos = self.chaos();
        if chaos {
            self.follow_stream(&v);
        }
        let stats = self.sh.stats.clone();
        match v["type"].as_str().unwrap_or("") {
            "ack" => {
                if let Some(n) = v["req_id"].as_u64() {
                    if let Some(t) = self.pending_acks.remove(&n) {
                        stats.location_ack.record(t.elapsed());
                    }
                    if let Some((job, step)) = self.steps.remove(&n) {
                        stats.acked_step(&job, step, &self.id);
                        if let Some(seq) = stats.seq_of(&job) {
                            // A job this worker stepped on was offered to it.
                            stats.track(seq, |t| {
                                t.offered = true;
                                t.completed_sent |= step == 3;
                            });
                        }
                    }
                }
            }
            "offer" => {
                let job = v["job_id"].as_str().unwrap_or_default().to_string();
                if let Some(h) = &self.holding {
                    if *h == job && chaos {
                        return; // sent again on a reconnect: already decided
                    }
                    if *h != job && !chaos {
                        stats.error("double_offer");
                    }
                }
                if let Some((seq, sched_us)) = v["description"].as_str().and_then(parse_description)
                {
                    let first = {
                        let mut t = stats.jobs.entry(seq).or_default();
                        let first = !t.offered;
                        t.offered = true;
                        first
                    };
                    if first && seq < SATURATE_BASE {
                        let sched = self.sh.start + Duration::from_micros(sched_us);
                        stats
                            .offer
                            .record(Instant::now().saturating_duration_since(sched));
                    }
                }
                self.actions.clear();
                self.set_holding(Some(job.clone()));
                self.decide(job);
            }
            "offer_revoked" if self.holding.as_deref() == v["job_id"].as_str() => self.release(),
            "job" => {
                let j = &v["job"];
                if self.holding.as_deref() != j["id"].as_str() {
                    return;
                }
                let gone = if chaos {
                    // Released by the server's word only: a step lost in a
                    // crash is taken up again after the re-read.
                    j["worker_id"].as_str() != Some(self.id.as_str())
                        || !matches!(
                            j["status"].as_str(),
                            Some("offered" | "accepted" | "arrived")
                        )
                } else {
                    j["status"] == "cancelled"
                };
                if gone {
                    self.release();
                }
            }
            "error" => {
                let code = v["code"].as_str().unwrap_or("");
                if let Some(n) = v["req_id"].as_u64() {
                    self.steps.remove(&n);
                }
                stats.error(server_error(code));
            }
            _ => {}
        }
    }

    fn release(&mut self) {
        self.set_holding(None);
        self.actions.clear();
    }

    /// A job step; in chaos mode with a `req_id`, so its ack can be audited.
    async fn step(&mut self, kind: &'static str, job: &str, step: u8) -> bool {
        let mut msg = json!({"type": &kind[4..], "job_id": job});
        if self.chaos() {
            self.next_req += 1;
            msg["req_id"] = json!(self.next_req);
            self.steps.insert(self.next_req, (job.to_string(), step));
        }
        self.send(msg, kind).await
    }

    async fn act(&mut self, a: Action) -> bool {
        let fast = self.sh.fast.load(Ordering::Relaxed);
        let (travel, session) = if fast {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (self.sh.opts.travel, self.sh.opts.session)
        };
        match a {
            Action::Accept(job) => {
                if !fast {
                    self.sh
                        .stats
                        .accepted_at
                        .insert(job.clone(), Instant::now());
                }
                let ok = self.step("out.accept", &job, 1).await;
                if let Some(seq) = self.sh.stats.seq_of(&job) {
                    self.sh.stats.track(seq, |t| t.accepted = true);
                }
                self.schedule(travel, Action::Arrive(job));
                ok
            }
            Action::Decline(job) => {
                let ok = self
                    .send(json!({"type": "decline", "job_id": job}), "out.decline")
                    .await;
                if !self.chaos() {
                    self.release();
                }
                ok
            }
            Action::Arrive(job) => {
                let ok = self.step("out.arrive", &job, 2).await;
                self.schedule(session, Action::Complete(job));
                ok
            }
            Action::Complete(job) => {
                let ok = self.step("out.complete", &job, 3).await;
                if !self.chaos() {
                    if let Some(seq) = self.sh.stats.seq_of(&job) {
                        self.sh.stats.track(seq, |t| t.completed_sent = true);
                    }
                    self.release();
                }
                ok
            }
        }
    }
}
