//! The baseline a team would build without dispatchd: worker positions in
//! Redis GEO sets (one per skill, GEOADD), nearest-available by a Lua script
//! that runs GEOSEARCH … ASC, filters available and not-busy workers and
//! reserves the first (SET busy) atomically. Same fleet, same position rate,
//! same open-loop job rate, against a redis-server on loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use serde::Serialize;

use crate::net::require_loopback;
use crate::opts::{Options, CITIES};
use crate::sim::near;
use crate::stats::{Latency, LatencySummary};

/// Nearest available, not busy, within the radius; reserved atomically.
/// COUNT bounds the sort; when every one of the nearest COUNT is busy the
/// script widens to the whole radius, as a careful team would.
const MATCH: &str = r#"
local function pick(cands)
  for _, w in ipairs(cands) do
    if redis.call('SISMEMBER', KEYS[2], w) == 1 and redis.call('EXISTS', 'lt:busy:' .. w) == 0 then
      redis.call('SET', 'lt:busy:' .. w, ARGV[4])
      return w
    end
  end
  return false
end
local near = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', ARGV[3], 'm', 'ASC', 'COUNT', 64)
local w = pick(near)
if w or #near < 64 then return w end
return pick(redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', ARGV[3], 'm', 'ASC'))
"#;

#[derive(Debug, Clone, Default, Serialize)]
pub struct BaselineReport {
    pub positions_sent: u64,
    pub positions_per_s: f64,
    /// One pipelined batch of GEOADDs (a 10 ms slice of the fleet's reports).
    pub position_batch: LatencySummary,
    /// Open-loop matches: scheduled time → script answered.
    pub match_latency: LatencySummary,
    pub matched: u64,
    pub no_worker: u64,
    pub errors: u64,
    /// Closed-loop saturation: matches per second with `saturate_clients` clients.
    pub saturate_matches_per_s: Option<f64>,
    /// Redis's own time per call (INFO commandstats), µs: the script, GEOADD.
    pub server_usec_per_match: Option<f64>,
    pub server_usec_per_geoadd: Option<f64>,
    /// `appendfsync always` (each reservation durable before the reply) or not.
    pub durable: bool,
}

pub struct RedisServer {
    child: Option<Child>,
    pub url: String,
    pub durable: bool,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port; `durable`: AOF with
    /// `appendfsync always`, as a dispatch system that must not lose a
    /// reservation needs (dispatchd fsyncs every acknowledged write too).
    pub async fn spawn(bin: &Path, durable: bool) -> anyhow::Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("loadtest-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let aof = if durable { "yes" } else { "no" };
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", aof, "--appendfsync", "always", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (apt-get install -y redis-server)",
                    bin.display()
                )
            })?;
        let url = format!("redis://127.0.0.1:{port}/");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(c) = redis::Client::open(url.as_str()) {
                if let Ok(mut con) = c.get_multiplexed_async_connection().await {
                    if redis::cmd("PING")
                        .query_async::<String>(&mut con)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("redis-server did not come up on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(RedisServer {
            child: Some(child),
            url,
            durable,
        })
    }

    pub fn external(url: &str) -> anyhow::Result<RedisServer> {
        let hostport = url
            .strip_prefix("redis://")
            .context("--redis-url must be redis://IP:PORT")?
            .trim_end_matches('/');
        let addr: SocketAddr = hostport
            .parse()
            .context("--redis-url host must be IP:PORT")?;
        require_loopback(&addr)?;
        Ok(RedisServer {
            child: None,
            url: url.to_string(),
            durable: false,
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Fleet {
    /// (id, skills, position)
    workers: Vec<(String, Vec<String>, (f64, f64))>,
}

fn fleet(o: &Options) -> Fleet {
    let workers = (0..o.workers)
        .map(|i| {
            let p = crate::sim::profile(o, i);
            (format!("lt-w-{i}"), p.skills, p.pos)
        })
        .collect();
    Fleet { workers }
}

async fn geoadd_batch(
    con: &mut MultiplexedConnection,
    batch: &[&(String, Vec<String>, (f64, f64))],
) -> redis::RedisResult<()> {
    let mut p = redis::pipe();
    for (id, skills, (lat, lng)) in batch {
        for s in skills {
            p.cmd("GEOADD")
                .arg(format!("lt:geo:{s}"))
                .arg(*lng)
                .arg(*lat)
                .arg(id)
                .ignore();
        }
    }
    p.query_async::<()>(con).await
}

pub async fn run(o: &Options, redis: &RedisServer) -> anyhow::Result<BaselineReport> {
    let client = redis::Client::open(redis.url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    redis::cmd("FLUSHDB").query_async::<()>(&mut con).await?;
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(&mut con)
        .await?;
    let fleet = Arc::new(fleet(o));
    // Load the fleet: positions and availability.
    for chunk in fleet.workers.chunks(1000) {
        let refs: Vec<_> = chunk.iter().collect();
        geoadd_batch(&mut con, &refs).await?;
        let mut p = redis::pipe();
        for (id, ..) in chunk {
            p.cmd("SADD").arg("lt:avail").arg(id).ignore();
        }
        p.query_async::<()>(&mut con).await?;
    }
    let script = Arc::new(redis::Script::new(MATCH));
    let positions_sent = Arc::new(AtomicU64::new(0));
    let batch_latency = Arc::new(Latency::default());
    let match_latency = Arc::new(Latency::default());
    let matched = Arc::new(AtomicU64::new(0));
    let missed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + o.duration;

    // Positions: every 10 ms, a slice of the fleet reports (pipelined GEOADDs).
    let pos_task = {
        let (fleet, mut con, sent, lat) = (
            fleet.clone(),
            con.clone(),
            positions_sent.clone(),
            batch_latency.clone(),
        );
        let per_tick = o.positions_per_s * o.workers as f64 / 100.0;
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(99);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut owed = 0.0;
            let mut next = 0usize;
            let mut moved: Vec<(String, Vec<String>, (f64, f64))> = Vec::new();
            while Instant::now() < end {
                tick.tick().await;
                owed += per_tick;
                let n = owed.floor() as usize;
                owed -= n as f64;
                if n == 0 || fleet.workers.is_empty() {
                    continue;
                }
                moved.clear();
                for _ in 0..n {
                    let (id, skills, (lat0, lng0)) = &fleet.workers[next % fleet.workers.len()];
                    next += 1;
                    let jitter = (rng.random_range(-1e-4..1e-4), rng.random_range(-1e-4..1e-4));
                    moved.push((
                        id.clone(),
                        skills.clone(),
                        (lat0 + jitter.0, lng0 + jitter.1),
                    ));
                }
                let refs: Vec<_> = moved.iter().collect();
                let t = Instant::now();
                if geoadd_batch(&mut con, &refs).await.is_ok() {
                    lat.record(t.elapsed());
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
    };

    // Jobs: open loop at the scenario's rate; a matched worker is released
    // after the same think + travel + session as the dispatchd run.
    let busy_for = o.think + o.travel + o.session;
    let mut k: u64 = 0;
    let mut rng = StdRng::seed_from_u64(o.seed.wrapping_add(7));
    if o.jobs_per_s > 0.0 {
        loop {
            let sched = start + Duration::from_secs_f64(k as f64 / o.jobs_per_s);
            if sched >= end {
                break;
            }
            tokio::time::sleep_until(sched.into()).await;
            let r = (k as usize) % o.residents.max(1);
            let centre = CITIES[r % o.cities.clamp(1, CITIES.len())];
            let home = near(&mut rng, centre, 6000.0);
            let skill = o.skills[rng.random_range(0..o.skills.len())].clone();
            let (mut con, script) = (con.clone(), script.clone());
            let (lat, matched, missed, errors) = (
                match_latency.clone(),
                matched.clone(),
                missed.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let res = reserve(&mut con, &script, &skill, home, k).await;
                lat.record(Instant::now().saturating_duration_since(sched));
                match res {
                    Ok(Some(w)) => {
                        matched.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(busy_for).await;
                        release(&mut con, &w).await;
                    }
                    Ok(None) => {
                        missed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            k += 1;
        }
    }
    let _ = pos_task.await;
    tokio::time::sleep(busy_for + Duration::from_millis(200)).await;
    let elapsed = start.elapsed().as_secs_f64();

    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut con)
        .await?;
    let per_call = |cmd: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| {
                l.split(',')
                    .find_map(|f| f.strip_prefix("usec_per_call="))
                    .and_then(|v| v.parse::<f64>().ok())
            })
    };
    let (server_usec_per_match, server_usec_per_geoadd) = (per_call("evalsha"), per_call("geoadd"));
    let saturate = if o.saturate > Duration::ZERO {
        Some(saturate(o, &con, &script).await)
    } else {
        None
    };
    Ok(BaselineReport {
        positions_sent: positions_sent.load(Ordering::Relaxed),
        positions_per_s: positions_sent.load(Ordering::Relaxed) as f64 / elapsed,
        position_batch: batch_latency.summary(),
        match_latency: match_latency.summary(),
        matched: matched.load(Ordering::Relaxed),
        no_worker: missed.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        saturate_matches_per_s: saturate,
        server_usec_per_match,
        server_usec_per_geoadd,
        durable: redis.durable,
    })
}

/// dispatchd's default `max_radius_m`: both sides search as far.
const RADIUS_M: f64 = 20_000.0;

/// The nearest available, not busy worker with `skill` within the radius,
/// reserved for job `tag` — one atomic script call.
async fn reserve(
    con: &mut MultiplexedConnection,
    script: &redis::Script,
    skill: &str,
    (lat, lng): (f64, f64),
    tag: u64,
) -> redis::RedisResult<Option<String>> {
    script
        .key(format!("lt:geo:{skill}"))
        .key("lt:avail")
        .arg(lng)
        .arg(lat)
        .arg(RADIUS_M)
        .arg(tag)
        .invoke_async(con)
        .await
}

async fn release(con: &mut MultiplexedConnection, worker: &str) {
    let _: redis::RedisResult<()> = redis::cmd("DEL")
        .arg(format!("lt:busy:{worker}"))
        .query_async(con)
        .await;
}

/// Clients matching back to back (each match released at once).
async fn saturate(o: &Options, con: &MultiplexedConnection, script: &Arc<redis::Script>) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + o.saturate;
    let mut tasks = Vec::new();
    for c in 0..o.saturate_clients {
        let (mut con, script, count, o) = (con.clone(), script.clone(), count.clone(), o.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(1000 + c as u64);
            while Instant::now() < end {
                let centre = CITIES[rng.random_range(0..o.cities.clamp(1, CITIES.len()))];
                let p = near(&mut rng, centre, 6000.0);
                let skill = &o.skills[rng.random_range(0..o.skills.len())];
                if let Ok(Some(w)) = reserve(&mut con, &script, skill, p, 0).await {
                    count.fetch_add(1, Ordering::Relaxed);
                    release(&mut con, &w).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    count.load(Ordering::Relaxed) as f64 / o.saturate.as_secs_f64()
}

/// What a Redis did, from `INFO`: CPU seconds and per-command totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RedisUsage {
    pub cpu_s: f64,
    /// command → (calls, total µs)
    pub commands: std::collections::BTreeMap<String, (u64, u64)>,
}

pub async fn usage(url: &str) -> anyhow::Result<RedisUsage> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("all").query_async(&mut con).await?;
    let mut u = RedisUsage::default();
    for line in info.lines() {
        if let Some(v) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            u.cpu_s += v.trim().parse::<f64>().unwrap_or(0.0);
        }
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            let (name, fields) = rest.split_once(':').unwrap_or((rest, ""));
            let get = |k: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(k))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            u.commands
                .insert(name.to_string(), (get("calls="), get("usec=")));
        }
    }
    Ok(u)
}
