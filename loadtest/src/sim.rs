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
    /// The job offered or held, if any.
    holding: Option<String>,
    actions: VecDeque<(tokio::time::Instant, Action)>,
    pending_acks: HashMap<u64, Instant>,
    next_req: u64,
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
        holding: None,
        actions: VecDeque::new(),
        pending_acks: HashMap::new(),
        next_req: 0,
    };
    let ok = w
        .send(
            json!({"type": "availability", "available": true, "req_id": "avail"}),
            "out.availability",
        )
        .await
        && w.send(
            json!({"type": "location", "lat": pos.0, "lng": pos.1}),
            "out.location",
        )
        .await;
    if ok {
        sh.stats.workers_idle.fetch_add(1, Ordering::Relaxed);
        w.run(&mut pos, &mut heading, centre).await;
    }
    sh.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
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
    async fn send(&mut self, v: Value, kind: &'static str) -> bool {
        match self.ws.send(Message::Text(v.to_string().into())).await {
            Ok(()) => {
                self.sh.stats.msgs.add(kind, 1);
                true
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
                    let Some(Ok(m)) = m else {
                        self.closed_by_server();
                        return;
                    };
                    match decode(&self.sh.stats, m) {
                        Ok(Some(v)) => self.on_message(v),
                        Ok(None) => {}
                        Err(()) => {
                            self.closed_by_server();
                            return;
                        }
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
                    if !self.send(msg, "out.location").await { return; }
                }
                _ = async { tokio::time::sleep_until(next_action.unwrap()).await }, if next_action.is_some() => {
                    let (_, a) = self.actions.pop_front().expect("front exists");
                    if !self.act(a).await { return; }
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

    fn on_message(&mut self, v: Value) {
        let stats = &self.sh.stats;
        match v["type"].as_str().unwrap_or("") {
            "ack" => {
                if let Some(n) = v["req_id"].as_u64() {
                    if let Some(t) = self.pending_acks.remove(&n) {
                        stats.location_ack.record(t.elapsed());
                    }
                }
            }
            "offer" => {
                let job = v["job_id"].as_str().unwrap_or_default().to_string();
                if let Some(h) = &self.holding {
                    if *h != job {
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
                stats.workers_idle.fetch_sub(1, Ordering::Relaxed);
                self.holding = Some(job.clone());
                let o = &self.sh.opts;
                if self.sh.fast.load(Ordering::Relaxed) {
                    self.schedule(Duration::ZERO, Action::Accept(job));
                    return;
                }
                let roll = self.rng.random::<f64>();
                if roll < o.decline_ratio {
                    self.schedule(o.think, Action::Decline(job));
                } else if roll < o.decline_ratio + o.ignore_ratio {
                    // Let it expire.
                } else {
                    self.schedule(o.think, Action::Accept(job));
                }
            }
            "offer_revoked" if self.holding.as_deref() == v["job_id"].as_str() => self.release(),
            "job" => {
                let j = &v["job"];
                if j["status"] == "cancelled" && self.holding.as_deref() == j["id"].as_str() {
                    self.release();
                }
            }
            "error" => {
                let code = v["code"].as_str().unwrap_or("");
                stats.error(server_error(code));
            }
            _ => {}
        }
    }

    fn release(&mut self) {
        if self.holding.take().is_some() {
            self.sh.stats.workers_idle.fetch_add(1, Ordering::Relaxed);
        }
        self.actions.clear();
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
                let ok = self
                    .send(json!({"type": "accept", "job_id": job}), "out.accept")
                    .await;
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
                self.release();
                ok
            }
            Action::Arrive(job) => {
                let ok = self
                    .send(json!({"type": "arrive", "job_id": job}), "out.arrive")
                    .await;
                self.schedule(session, Action::Complete(job));
                ok
            }
            Action::Complete(job) => {
                let ok = self
                    .send(json!({"type": "complete", "job_id": job}), "out.complete")
                    .await;
                if let Some(seq) = self.sh.stats.seq_of(&job) {
                    self.sh.stats.track(seq, |t| t.completed_sent = true);
                }
                self.release();
                ok
            }
        }
    }
}

/// A resident's socket: its jobs are pushed without subscribing.
pub async fn resident_socket(sh: Arc<Shared>, i: usize) {
    let token = mint(&sh.secret, &format!("lt-r-{i}"), "resident", None);
    let Some(mut ws) = open_socket(&sh, sh.opts.workers + i, &token).await else {
        return;
    };
    let mut stop = sh.stop.clone();
    loop {
        tokio::select! {
            m = ws.next() => {
                let Some(Ok(m)) = m else { break };
                match decode(&sh.stats, m) {
                    Ok(Some(v)) => on_resident_message(&sh, &v),
                    Ok(None) => {}
                    Err(()) => break,
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
    let resp = sh
        .http
        .post(format!(
            "{}/v1/jobs",
            sh.bases[seq as usize % sh.bases.len()]
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await;
    match resp {
        Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
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
        }
        Ok(r) => {
            let kind = match r.status().as_u16() {
                429 => "create_rate_limited",
                503 => "create_unavailable",
                s if s >= 500 => "create_5xx",
                _ => "create_4xx",
            };
            sh.stats.error(kind);
        }
        Err(_) => sh.stats.error("create_transport_error"),
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
