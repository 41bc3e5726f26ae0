//! `loadtest`: parses the scenario and flags, starts (or finds) the server,
//! runs, prints the summary and writes `--json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use loadtest::opts::{Options, Scenario};
use loadtest::{baseline, report, run, target::Target};

/// Plays a fleet of workers and residents against dispatchd on loopback.
#[derive(Parser)]
#[command(name = "loadtest", version)]
struct Cli {
    /// city | rush | connections | soak (each sets the defaults below).
    scenario: Scenario,
    /// A running server (loopback only), e.g. http://127.0.0.1:8080;
    /// several nodes comma separated (clients are spread over them).
    #[arg(long, conflicts_with = "server_bin")]
    url: Option<String>,
    /// Their pids (comma separated, same order), to sample RSS and CPU.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Start this dispatchd binary on a free port with a fresh data dir instead.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// With --server-bin: start this many nodes behind one Redis (a
    /// redis-server with `appendfsync always` is started for them, or give
    /// --cluster-redis-url).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// With --nodes: use this running Redis (loopback only) instead of starting one.
    #[arg(long)]
    cluster_redis_url: Option<String>,
    /// Run the started node(s) in cluster mode even when there is one.
    #[arg(long)]
    cluster: bool,
    /// JWT secret the server uses (tokens are minted, not registered).
    #[arg(
        long,
        env = "DISPATCHD_AUTH_JWT_SECRET",
        default_value = "change-me-dispatchd-dev-secret"
    )]
    jwt_secret: String,
    /// Simulated workers (one socket each).
    #[arg(long)]
    workers: Option<usize>,
    /// Simulated residents (jobs are spread over them).
    #[arg(long)]
    residents: Option<usize>,
    /// Residents do not hold sockets.
    #[arg(long)]
    no_follow: bool,
    /// Cities the fleet and the homes are spread over (at most 30).
    #[arg(long)]
    cities: Option<usize>,
    /// Open-loop job arrivals per second (0: none).
    #[arg(long)]
    jobs_per_s: Option<f64>,
    /// Per worker.
    #[arg(long)]
    positions_per_s: Option<f64>,
    /// Fraction of positions sent with a req_id to time the ack.
    #[arg(long)]
    ack_sample: Option<f64>,
    /// Length of the run phase, seconds.
    #[arg(long)]
    duration_s: Option<f64>,
    /// New sockets per second while ramping.
    #[arg(long)]
    ramp_per_s: Option<f64>,
    /// A worker's delay before answering an offer, ms.
    #[arg(long)]
    think_ms: Option<u64>,
    /// Fraction of offers declined.
    #[arg(long)]
    decline_ratio: Option<f64>,
    /// Fraction of offers left to expire.
    #[arg(long)]
    ignore_ratio: Option<f64>,
    /// Accept → arrive, ms.
    #[arg(long)]
    travel_ms: Option<u64>,
    /// Arrive → complete (the billed session), ms.
    #[arg(long)]
    session_ms: Option<u64>,
    /// After the run: how long to wait for jobs in flight to finish, seconds.
    #[arg(long)]
    drain_s: Option<f64>,
    /// After the run, create jobs back to back for this long (matches/s).
    #[arg(long)]
    saturate_s: Option<f64>,
    /// Clients creating jobs back to back in the saturation phase.
    #[arg(long)]
    saturate_clients: Option<usize>,
    /// 127.0.0.x source addresses for client sockets.
    #[arg(long)]
    source_ips: Option<usize>,
    /// Seed of every random choice (positions, skills, answers).
    #[arg(long)]
    seed: Option<u64>,
    /// Chaos mode (needs --server-bin): kill -9 a node (with --nodes, a random
    /// one) every this many seconds during the run and start it again on the
    /// same data directory; the apps reconnect with `?since=` and carry on,
    /// and every acknowledged write is audited at the end.
    #[arg(long, requires = "server_bin")]
    chaos_kill_every_s: Option<f64>,
    /// Chaos mode: how many kills (the run lasts at least (cycles + 1) × the period).
    #[arg(long, default_value_t = 20, requires = "chaos_kill_every_s")]
    chaos_cycles: usize,
    /// Run the same workload against Redis GEO too.
    #[arg(long, value_parser = ["redis-geo"])]
    baseline: Option<String>,
    /// redis-server to start for the baseline.
    #[arg(long, default_value = "redis-server")]
    redis_bin: PathBuf,
    /// Baseline Redis without `appendfsync always` (reservations not durable).
    #[arg(long)]
    baseline_volatile: bool,
    /// Or a running one (loopback only).
    #[arg(long)]
    redis_url: Option<String>,
    /// Extra DISPATCHD_* settings for a started server, KEY=VALUE.
    #[arg(long = "server-env", value_parser = parse_kv)]
    server_env: Vec<(String, String)>,
    /// Write every figure as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn options(c: &Cli) -> Options {
    let mut o = Options::defaults(c.scenario);
    let ms = Duration::from_millis;
    let s = Duration::from_secs_f64;
    macro_rules! set {
        ($($field:ident = $value:expr),* $(,)?) => { $( if let Some(v) = $value { o.$field = v; } )* };
    }
    set!(
        workers = c.workers,
        residents = c.residents,
        cities = c.cities,
        jobs_per_s = c.jobs_per_s,
        positions_per_s = c.positions_per_s,
        ack_sample = c.ack_sample,
        duration = c.duration_s.map(s),
        ramp_per_s = c.ramp_per_s,
        think = c.think_ms.map(ms),
        decline_ratio = c.decline_ratio,
        ignore_ratio = c.ignore_ratio,
        travel = c.travel_ms.map(ms),
        session = c.session_ms.map(ms),
        drain = c.drain_s.map(s),
        saturate = c.saturate_s.map(s),
        saturate_clients = c.saturate_clients,
        source_ips = c.source_ips,
        seed = c.seed,
    );
    if c.no_follow {
        o.follow = false;
    }
    if let Some(every) = c.chaos_kill_every_s {
        let chaos = loadtest::opts::Chaos {
            kill_every: s(every.max(0.5)),
            cycles: c.chaos_cycles.max(1),
        };
        o.duration = o.duration.max(chaos.kill_every * (chaos.cycles as u32 + 1));
        o.drain = o.drain.max(Duration::from_secs(60));
        o.chaos = Some(chaos);
    }
    o
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let opts = options(&cli);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let http = reqwest::Client::new();
        let mut env = cli.server_env.clone();
        let mut _cluster_redis = None;
        if cli.nodes > 1 || cli.cluster {
            let url = match &cli.cluster_redis_url {
                Some(u) => baseline::RedisServer::external(u)?.url.clone(),
                None => {
                    let r = baseline::RedisServer::spawn(&cli.redis_bin, true).await?;
                    let u = r.url.clone();
                    _cluster_redis = Some(r);
                    u
                }
            };
            env.push(("DISPATCHD_REDIS_URL".into(), url));
        }
        let cluster_url = env
            .iter()
            .find(|(k, _)| k == "DISPATCHD_REDIS_URL")
            .map(|(_, v)| v.clone());
        let mut target = match (&cli.server_bin, &cli.url) {
            (Some(bin), _) => Target::spawn(bin, &cli.jwt_secret, &env, &http, cli.nodes).await?,
            (None, Some(url)) => Target::external(url, &cli.server_pid, &http).await?,
            (None, None) => {
                anyhow::bail!("give --url (a running server) or --server-bin (start one)")
            }
        };
        let mut rep = run::run(opts.clone(), &target, &cli.jwt_secret, !cli.quiet).await?;
        if let Some(u) = &cluster_url {
            rep.cluster_redis = baseline::usage(u).await.ok();
        }
        rep.server.clean_exit = target.stop();
        if cli.baseline.is_some() {
            let redis = match &cli.redis_url {
                Some(u) => baseline::RedisServer::external(u)?,
                None => {
                    baseline::RedisServer::spawn(&cli.redis_bin, !cli.baseline_volatile).await?
                }
            };
            eprintln!(
                "running the redis-geo baseline ({:.0} s) …",
                opts.duration.as_secs_f64()
            );
            rep.baseline = Some(baseline::run(&opts, &redis).await?);
        }
        print!("{}", report::summary(&rep));
        if let Some(path) = &cli.json {
            std::fs::write(path, serde_json::to_vec_pretty(&rep)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })
}
