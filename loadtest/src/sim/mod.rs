//! The simulated fleet: workers that stream positions and answer offers,
//! residents that create jobs open-loop and follow them on their sockets.
//! Every server message is checked against the contract.
//!
//! Here: what every client shares (tokens, places, message decoding, the
//! socket to a node). [`worker`] plays a worker, [`resident`] a resident
//! and the job creator, [`resume`] what a chaos-mode app does to come back.

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

mod resident;
mod resume;
mod worker;

pub use resident::{create_job, resident_socket};
pub use resume::step_of;
pub use worker::worker;

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
        "tracking" => "in.tracking",
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
