//! The simulated fleet: workers that stream positions and answer offers,
//! residents that create jobs open-loop and follow them on their sockets.
//! Every server message is checked against the contract.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::check;
use crate::net::{connect_ws, source_ip, Socket};
use crate::opts::{Options, CITIES};
use crate::stats::Stats;

/// Everything the simulated clients share.
pub struct Shared {
    pub opts: Options,
    pub stats: Arc<Stats>,
    /// The nodes: client `i` talks to node `i % len`.
    pub servers: Vec<SocketAddr>,
    pub bases: Vec<String>,
    pub http: reqwest::Client,
    pub secret: String,
    /// Time zero: offers carry their job's scheduled create time relative to it.
    pub start: Instant,
    pub stop: watch::Receiver<bool>,
    /// Saturation phase: workers answer at once and finish immediately.
    pub fast: AtomicBool,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    skills: Option<&'a [String]>,
}

/// A token as `dispatchd token` would mint it.
pub fn mint(secret: &str, sub: &str, role: &str, skills: Option<&[String]>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + 86_400;
    let claims = Claims {
        sub,
        role,
        exp,
        skills,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing")
}

/// A point within ~`radius_m` of a city centre.
pub fn near(rng: &mut StdRng, city: (f64, f64), radius_m: f64) -> (f64, f64) {
    let r = radius_m * rng.random::<f64>().sqrt();
    let a = rng.random::<f64>() * std::f64::consts::TAU;
    let dlat = r * a.cos() / 111_320.0;
    let dlng = r * a.sin() / (111_320.0 * city.0.to_radians().cos());
    (city.0 + dlat, city.1 + dlng)
}

/// One step of a random walk at a few metres a second, kept near the centre.
fn walk(rng: &mut StdRng, pos: &mut (f64, f64), heading: &mut f64, dt_s: f64, centre: (f64, f64)) {
    *heading += rng.random_range(-0.6..0.6);
    let speed = rng.random_range(1.0..5.0);
    let d = speed * dt_s;
    pos.0 += d * heading.cos() / 111_320.0;
    pos.1 += d * heading.sin() / (111_320.0 * pos.0.to_radians().cos());
    let off = ((pos.0 - centre.0) * 111_320.0)
        .hypot((pos.1 - centre.1) * 111_320.0 * centre.0.to_radians().cos());
    if off > 8000.0 {
        *heading += std::f64::consts::PI;
    }
}

/// Sequence numbers from here on belong to the saturation phase, which is
/// measured by rate only.
pub const SATURATE_BASE: u64 = 1_000_000_000;

/// `lt|<seq>|<scheduled µs since start>` — lets a worker time its offer
/// even before the create call has answered.
pub fn describe(seq: u64, sched_us: u64) -> String {
    format!("lt|{seq}|{sched_us}")
}

pub fn parse_description(d: &str) -> Option<(u64, u64)> {
    let mut p = d.split('|');
    (p.next()? == "lt").then_some(())?;
    Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

fn static_in(t: &str) -> &'static str {
    match t {
        "offer" => "in.offer",
        "offer_revoked" => "in.offer_revoked",
        "job" => "in.job",
        "error" => "in.error",
        "ack" => "in.ack",
        "pong" => "in.pong",
        "resumed" => "in.resumed",
        _ => "in.other",
    }
}

fn server_error(code: &str) -> &'static str {
    match code {
        "invalid_input" => "server_error.invalid_input",
        "not_found" => "server_error.not_found",
        "invalid_transition" => "server_error.invalid_transition",
        "offer_expired" => "server_error.offer_expired",
        "rate_limited" => "server_error.rate_limited",
        "forbidden" => "server_error.forbidden",
        "unavailable" => "server_error.unavailable",
        _ => "server_error.other",
    }
}

/// Reads a text frame as JSON and checks it; None for control frames.
fn decode(stats: &Stats, m: Message) -> Result<Option<Value>, ()> {
    match m {
        Message::Text(t) => match serde_json::from_str::<Value>(&t) {
            Ok(v) => match check::message(&v) {
                Ok(t) => {
                    stats.msgs.add(static_in(t), 1);
                    Ok(Some(v))
                }
                Err(kind) => {
                    stats.error(kind);
                    Ok(None)
                }
            },
            Err(_) => {
                stats.error("unparseable_message");
                Ok(None)
            }
        },
        Message::Binary(_) => {
            stats.error("unexpected_binary_frame");
            Ok(None)
        }
        Message::Close(_) => Err(()),
        _ => Ok(None),
    }
}

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

/// Who worker `i` is: its city, starting point and skills. The same for
/// dispatchd and the baseline, and for the lost-work check.
pub struct Profile {
    pub city: usize,
    pub pos: (f64, f64),
    pub skills: Vec<String>,
    pub rng: StdRng,
}

pub fn profile(o: &Options, i: usize) -> Profile {
    let mut rng = StdRng::seed_from_u64(o.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let city = i % o.cities.clamp(1, CITIES.len());
    let pos = near(&mut rng, CITIES[city], 6000.0);
    let n = o.skills.len();
    let first = rng.random_range(0..n);
    let skills = (0..o.skills_per_worker.min(n))
        .map(|k| o.skills[(first + k) % n].clone())
        .collect();
    Profile {
        city,
        pos,
        skills,
        rng,
    }
}

/// (city, skill) pairs some worker covers: a job outside them can wait forever.
pub fn coverage(o: &Options) -> std::collections::HashSet<(usize, String)> {
    (0..o.workers)
        .flat_map(|i| {
            let p = profile(o, i);
            p.skills.into_iter().map(move |s| (p.city, s))
        })
        .collect()
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

/// Chaos mode: opens client `i`'s socket again after its node went away —
/// its own node first, then the others — with `?since=` its last `seq`;
/// gives up only when the run stops.
async fn reopen_socket(sh: &Shared, i: usize, token: &str, since: u64) -> Option<(Socket, usize)> {
    let t0 = Instant::now();
    let n = sh.servers.len();
    let query = if since > 0 {
        format!("/v1/ws?token={token}&since={since}")
    } else {
        format!("/v1/ws?token={token}")
    };
    let mut attempt = 0usize;
    while !*sh.stop.borrow() {
        let node = (i + attempt) % n;
        let connect = connect_ws(sh.servers[node], source_ip(i, sh.opts.source_ips), &query);
        if let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(5), connect).await {
            sh.stats.reconnect.record(t0.elapsed());
            sh.stats.msgs.add("chaos.reconnected", 1);
            return Some((ws, node));
        }
        attempt += 1;
        // Backing off (50 ms doubling to 1 s, jittered): a fleet whose node
        // died must not hammer it while it restarts.
        let base = 50u64 << attempt.min(5);
        let ms = base.min(1000) / 2 + rand::random_range(0..=base.min(1000) / 2);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    None
}

/// Chaos mode: reads a resuming socket up to its `resumed`, handing every
/// replayed message to `each`; true when the server said there is a gap.
async fn read_resume(sh: &Shared, ws: &mut Socket, mut each: impl FnMut(Value)) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        let Ok(Some(v)) = decode(&sh.stats, m) else {
            continue;
        };
        if v["type"] == "resumed" {
            let gap = v["gap"].as_bool().unwrap_or(false);
            sh.stats.msgs.add(
                if gap {
                    "chaos.resumed_with_gap"
                } else {
                    "chaos.resumed_without_gap"
                },
                1,
            );
            return Some(gap);
        }
        each(v);
    }
}

/// Chaos mode: a user's jobs as the server has them now (the re-read after a gap).
async fn my_jobs(sh: &Shared, node: usize, token: &str) -> Option<Vec<Value>> {
    let r = sh
        .http
        .get(format!("{}/v1/jobs?limit=50", sh.bases[node]))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    sh.stats.msgs.add("chaos.jobs_reread", 1);
    v["jobs"].as_array().cloned()
}

/// How far a job's status is along accept → arrive → complete.
pub fn step_of(status: &str) -> u8 {
    match status {
        "accepted" => 1,
        "arrived" => 2,
        "completed" => 3,
        _ => 0,
    }
}

/// Client `i`'s socket to its node, from its source address; counted.
async fn open_socket(sh: &Shared, i: usize, token: &str) -> Option<Socket> {
    let t0 = Instant::now();
    let server = sh.servers[i % sh.servers.len()];
    match connect_ws(
        server,
        source_ip(i, sh.opts.source_ips),
        &format!("/v1/ws?token={token}"),
    )
    .await
    {
        Ok(ws) => {
            sh.stats.connect.record(t0.elapsed());
            sh.stats.connections_open.fetch_add(1, Ordering::Relaxed);
            Some(ws)
        }
        Err(e) => {
            sh.stats.error("connect_failed");
            if i < 3 {
                eprintln!("client {i}: {e:#}");
            }
            None
        }
    }
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

/// A resident's socket: its jobs are pushed without subscribing. In chaos
/// mode it reconnects with `?since=` and re-reads its jobs after a gap.
pub async fn resident_socket(sh: Arc<Shared>, i: usize) {
    let token = mint(&sh.secret, &format!("lt-r-{i}"), "resident", None);
    let client = sh.opts.workers + i;
    let Some(mut ws) = open_socket(&sh, client, &token).await else {
        return;
    };
    let mut stop = sh.stop.clone();
    let mut last_seq = 0u64;
    loop {
        tokio::select! {
            m = ws.next() => {
                match m.map(|m| m.map(|m| decode(&sh.stats, m))) {
                    Some(Ok(Ok(Some(v)))) => {
                        if let Some(s) = v["seq"].as_u64() {
                            last_seq = last_seq.max(s);
                        }
                        on_resident_message(&sh, &v);
                    }
                    Some(Ok(Ok(None))) => {}
                    _ if sh.opts.chaos.is_some() => {
                        sh.stats.msgs.add("chaos.disconnected", 1);
                        let Some((again, node)) = reopen_socket(&sh, client, &token, last_seq).await else {
                            break;
                        };
                        ws = again;
                        let mut gap = last_seq == 0;
                        if last_seq > 0 {
                            let mut replayed = Vec::new();
                            match read_resume(&sh, &mut ws, |v| replayed.push(v)).await {
                                Some(g) => gap = g,
                                None => continue, // closed again: the next read reconnects
                            }
                            for v in replayed {
                                if let Some(s) = v["seq"].as_u64() {
                                    last_seq = last_seq.max(s);
                                }
                                on_resident_message(&sh, &v);
                            }
                        }
                        if gap {
                            for j in my_jobs(&sh, node, &token).await.unwrap_or_default() {
                                on_resident_message(&sh, &json!({"type": "job", "job": j}));
                            }
                        }
                    }
                    _ => break,
                }
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                let _ = ws.close(None).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = ws.next().await {}
                }).await;
                break;
            }
        }
    }
    let stopping = *sh.stop.borrow();
    if !stopping {
        sh.stats.error("socket_closed_by_server");
    }
    sh.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
}

fn on_resident_message(sh: &Shared, v: &Value) {
    match v["type"].as_str() {
        Some("job") => {
            let j = &v["job"];
            let Some((seq, _)) = j["description"].as_str().and_then(parse_description) else {
                return;
            };
            let status = j["status"].as_str().unwrap_or("");
            if status == "accepted" {
                if let Some((_, t)) = j["id"]
                    .as_str()
                    .and_then(|id| sh.stats.accepted_at.remove(id))
                {
                    sh.stats.accept_to_resident.record(t.elapsed());
                }
            }
            sh.stats.track(seq, |t| match status {
                "accepted" | "arrived" => t.resident_saw_accepted = true,
                "completed" => {
                    t.resident_saw_accepted = true;
                    t.resident_saw_completed = true;
                }
                "cancelled" => t.cancelled = true,
                _ => {}
            });
        }
        Some("error") => sh
            .stats
            .error(server_error(v["code"].as_str().unwrap_or(""))),
        _ => {}
    }
}

/// Creates one job at its scheduled time and records how long it took
/// from that time (so a slow server cannot hide queueing: no coordinated omission).
pub async fn create_job(sh: Arc<Shared>, seq: u64, sched: Instant, rng_seed: u64) {
    let o = &sh.opts;
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let r = (seq as usize) % o.residents.max(1);
    let token = mint(&sh.secret, &format!("lt-r-{r}"), "resident", None);
    let city = r % o.cities.clamp(1, CITIES.len());
    let home = near(&mut rng, CITIES[city], 6000.0);
    let skill = &o.skills[rng.random_range(0..o.skills.len())];
    sh.stats
        .track(seq, |t| t.place = Some((city, skill.clone())));
    let sched_us = sched.duration_since(sh.start).as_micros() as u64;
    let body = json!({"lat": home.0, "lng": home.1, "skill": skill, "description": describe(seq, sched_us)});
    sh.stats.msgs.add("out.create", 1);
    let chaos = o.chaos.is_some();
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0usize;
    loop {
        let node = (seq as usize + attempt) % sh.bases.len();
        let mut req = sh
            .http
            .post(format!("{}/v1/jobs", sh.bases[node]))
            .bearer_auth(&token)
            .json(&body);
        if chaos {
            // A retry after a crash must not create the job twice.
            req = req.header("Idempotency-Key", format!("lt-{seq}"));
        }
        let resp = req.send().await;
        let retry = match resp {
            Ok(r)
                if r.status() == reqwest::StatusCode::CREATED
                    || (chaos && r.status() == reqwest::StatusCode::OK) =>
            {
                if r.status() == reqwest::StatusCode::OK {
                    sh.stats.msgs.add("chaos.create_replayed", 1);
                }
                if seq < SATURATE_BASE {
                    sh.stats
                        .job_create
                        .record(Instant::now().saturating_duration_since(sched));
                }
                if let Ok(v) = r.json::<Value>().await {
                    if check::job(&v).is_err() {
                        sh.stats.error("bad_job_shape");
                    }
                    if let Some(id) = v["id"].as_str() {
                        sh.stats.job_ids.insert(id.to_string(), seq);
                    }
                    sh.stats.track(seq, |t| t.created = true);
                }
                false
            }
            Ok(r) if chaos && r.status().is_server_error() => true,
            Ok(r) => {
                let kind = match r.status().as_u16() {
                    429 => "create_rate_limited",
                    503 => "create_unavailable",
                    s if s >= 500 => "create_5xx",
                    _ => "create_4xx",
                };
                sh.stats.error(kind);
                false
            }
            Err(_) if chaos => true,
            Err(_) => {
                sh.stats.error("create_transport_error");
                false
            }
        };
        if !retry {
            return;
        }
        if Instant::now() > give_up || *sh.stop.borrow() {
            sh.stats.error("create_never_acknowledged");
            return;
        }
        sh.stats.msgs.add("chaos.create_retried", 1);
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_round_trip() {
        assert_eq!(parse_description(&describe(42, 1234)), Some((42, 1234)));
        assert_eq!(parse_description("leak"), None);
    }

    #[test]
    fn walks_stay_in_town() {
        let mut rng = StdRng::seed_from_u64(3);
        let c = CITIES[0];
        let mut p = near(&mut rng, c, 6000.0);
        let mut h = 0.0;
        for _ in 0..100_000 {
            walk(&mut rng, &mut p, &mut h, 1.0, c);
        }
        let off = ((p.0 - c.0) * 111_320.0).hypot((p.1 - c.1) * 111_320.0 * c.0.to_radians().cos());
        assert!(off < 9000.0, "{off}");
    }
}
