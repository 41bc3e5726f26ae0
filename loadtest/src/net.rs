//! Sockets at scale on one machine: the open-files limit, client sockets
//! spread over several 127.0.0.x source addresses (each has its own ~28k
//! ephemeral ports), small WebSocket buffers, and the loopback-only rule.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub type Socket = WebSocketStream<TcpStream>;

/// Raises the soft open-files limit to the hard one; returns the new limit.
pub fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r = want;
            }
        }
    }
    r.rlim_cur
}

/// The generator only ever talks to loopback.
pub fn require_loopback(addr: &SocketAddr) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address: the load generator only targets 127.0.0.0/8");
    }
    Ok(())
}

/// `http://127.0.0.1:8080` → its socket address (loopback checked).
pub fn parse_base(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = hostport
        .parse()
        .with_context(|| format!("--url host must be IP:PORT, got {hostport}"))?;
    require_loopback(&addr)?;
    Ok(addr)
}

/// The `i`-th client's source address: 127.0.0.2 … 127.0.0.(1+n).
pub fn source_ip(i: usize, n: usize) -> IpAddr {
    let k = (i % n.max(1)) as u32 + 2;
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | k))
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
}

/// Opens a WebSocket to `server` from `source`, with small buffers.
pub async fn connect_ws(
    server: SocketAddr,
    source: IpAddr,
    path_and_query: &str,
) -> anyhow::Result<Socket> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source, 0))
        .with_context(|| format!("bind {source}"))?;
    let stream = sock.connect(server).await.context("tcp connect")?;
    stream.set_nodelay(true)?;
    let req = format!("ws://{server}{path_and_query}").into_client_request()?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(ws_config()))
        .await
        .context("websocket handshake")?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(parse_base("http://127.0.0.1:8080").is_ok());
        assert!(parse_base("http://127.9.9.9:80/x").is_ok());
        assert!(parse_base("http://10.0.0.1:8080").is_err());
        assert!(parse_base("http://example.com:80").is_err());
        assert!(parse_base("https://127.0.0.1:1").is_err());
        assert_eq!(source_ip(0, 4).to_string(), "127.0.0.2");
        assert_eq!(source_ip(5, 4).to_string(), "127.0.0.3");
    }
}
