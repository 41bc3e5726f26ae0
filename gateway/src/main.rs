//! `dispatchd`: parses arguments, sets up logging, binds, and hands over to
//! `server::run` with the shutdown signal. Also mints tokens for operators.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway::auth::Auth;
use gateway::config::Config;
use persistence::Role;

/// mimalloc returns freed pages to the system: under a steady load the
/// process's RSS stays flat where glibc's malloc let it creep (BENCHMARKS.md, soak).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// dispatchd — a real-time dispatch engine: live worker positions, nearest
/// available matching, offers over WebSocket, and the job lifecycle.
#[derive(Parser)]
#[command(name = "dispatchd", version)]
struct Cli {
    /// Configuration file [default: ./config.toml, if present]. Every key can
    /// also be set as DISPATCHD_<SECTION>_<KEY>, e.g. DISPATCHD_SERVER_ADDR.
    #[arg(long, global = true, env = "DISPATCHD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Print a signed JWT made with the configured secret.
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// resident, worker or ops.
        #[arg(long)]
        role: String,
        /// Lifetime in seconds [default: auth.token_ttl_s].
        #[arg(long)]
        ttl_s: Option<u64>,
        /// For a worker without an account: its skills, comma separated.
        #[arg(long, value_delimiter = ',')]
        skills: Option<Vec<String>>,
    },
    /// Check the configuration and print it with every default filled in.
    CheckConfig,
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    Config::load(&path, explicit, std::env::vars()).map_err(anyhow::Error::from)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = load(&cli)?;
    match &cli.command {
        None | Some(Command::Serve) => serve(cfg),
        Some(Command::Token {
            sub,
            role,
            ttl_s,
            skills,
        }) => {
            let Some(role) = Role::parse(role) else {
                anyhow::bail!("--role {role:?}: must be resident, worker or ops");
            };
            if sub.is_empty() || sub.len() > 128 {
                anyhow::bail!("--sub: must be 1 to 128 bytes");
            }
            if let Some(s) = skills {
                gateway::routes::auth::parse_skills(s)
                    .map_err(|e| anyhow::anyhow!("--skills: {e}"))?;
            }
            let now_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let auth = Auth::new(&cfg.auth);
            let ttl = ttl_s.unwrap_or(cfg.auth.token_ttl_s);
            let (token, _) = auth.mint(sub, role, skills.clone(), now_s, ttl);
            println!("{token}");
            Ok(())
        }
        Some(Command::CheckConfig) => {
            print!("{}", toml::to_string(&cfg)?);
            Ok(())
        }
    }
}

fn serve(cfg: Config) -> anyhow::Result<()> {
    let level: tracing::Level = cfg.log.level.parse().context("log.level")?;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let files = gateway::server::raise_nofile();
    tracing::info!(open_files = files, "open-files limit (one per socket)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener =
            bind(cfg.addr()).with_context(|| format!("binding server.addr {}", cfg.server.addr))?;
        gateway::server::run(cfg, listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// Pending connections the kernel queues before `accept` (capped by
/// `net.core.somaxconn`): after a restart every app reconnects at once, and
/// a short queue turns that burst into SYN retries seconds apart.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
