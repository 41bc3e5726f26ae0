//! Holding up under abuse (API.md v1.1): bounded password hashing, slow and
//! silent connections, connection caps, no acknowledgement before
//! durability, and the contract's error shape for every refusal.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

/// 200 concurrent registrations and logins (unknown emails) at the default
/// argon2 cost: peak memory grows by at most the hashing threads' blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_memory_stays_bounded() {
    const THREADS: u64 = 2;
    const MEMORY_KIB: u64 = 19_456;
    let srv = Server::start(&[
        ("DISPATCHD_AUTH_ARGON2_MEMORY_KIB", "19456"),
        ("DISPATCHD_AUTH_MAX_CONCURRENT_HASHES", "2"),
    ])
    .await;
    let base = status_kib(srv.pid(), "VmRSS:");
    let srv = Arc::new(srv);
    let mut all = Vec::new();
    for i in 0..200 {
        let srv = srv.clone();
        all.push(tokio::spawn(async move {
            let email = format!("{}@example.com", unique(&format!("h{i}-")));
            let (st, v) = if i % 2 == 0 {
                let body =
                    json!({"email": email, "password": PASSWORD, "name": "N", "role": "resident"});
                srv.call(Method::POST, "/v1/auth/register", None, Some(body))
                    .await
            } else {
                srv.login(&email, PASSWORD).await
            };
            match st {
                StatusCode::CREATED | StatusCode::UNAUTHORIZED => {}
                StatusCode::SERVICE_UNAVAILABLE => Server::assert_error(&v, "unavailable"),
                other => panic!("unexpected {other}: {v}"),
            }
            st
        }));
    }
    let mut served = 0;
    for t in all {
        if t.await.unwrap() != StatusCode::SERVICE_UNAVAILABLE {
            served += 1;
        }
    }
    assert!(served > 0, "some attempts must be served");
    let peak = status_kib(srv.pid(), "VmHWM:");
    let growth = peak.saturating_sub(base);
    let bound = THREADS * MEMORY_KIB + 40 * 1024;
    eprintln!("served {served}/200; RSS {base} KiB -> peak {peak} KiB (+{growth}, bound {bound})");
    assert!(
        growth <= bound,
        "peak RSS grew by {growth} KiB; hashing may hold at most {THREADS} x {MEMORY_KIB} KiB"
    );
}

/// Reads until the peer closes; true if it closed (EOF or reset) within `d`.
async fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + d;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_silent_and_idle_connections_are_dropped() {
    let mut srv = Server::start(&[
        ("DISPATCHD_SERVER_HEADER_TIMEOUT_S", "1"),
        ("DISPATCHD_SERVER_IDLE_TIMEOUT_S", "3"),
        ("DISPATCHD_SERVER_SHUTDOWN_GRACE_S", "30"),
    ])
    .await;
    // Silent sockets and a slowloris dripping one header line at a time.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&srv.addr).await.unwrap());
    }
    let mut slow = TcpStream::connect(&srv.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let drip = tokio::spawn(async move {
        for i in 0..40 {
            if slow
                .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    });
    // A keep-alive connection that idles longer than the header timeout
    // (but not the idle one) still serves its next request.
    let mut keep = TcpStream::connect(&srv.addr).await.unwrap();
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr);
    keep.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = keep.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    keep.write_all(req.as_bytes()).await.unwrap();
    let n = keep.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "an idle keep-alive connection is kept for idle_timeout_s"
    );

    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "a silent socket stays open"
        );
    }
    assert!(drip.await.unwrap(), "a slowloris socket stays open");
    assert!(
        closed_within(&mut keep, Duration::from_secs(15)).await,
        "an idle socket stays open"
    );
    assert!(
        srv.metric("dispatchd_connections_timed_out_total{reason=\"header\"}")
            .await
            >= 21.0
    );
    assert!(
        srv.metric("dispatchd_connections_timed_out_total{reason=\"idle\"}")
            .await
            >= 1.0
    );

    // Idle and half-sent connections do not hold up shutdown.
    let mut idle = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(&srv.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        idle.push(s);
    }
    let started = Instant::now();
    let st = srv.terminate().await;
    assert!(st.success(), "{st}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "half-sent connections held SIGTERM for {:?} (grace 30 s)",
        started.elapsed()
    );
}

async fn connect_from(ip: &str, to: &str) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    sock.connect(to.parse().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps_refuse_new_sockets_and_health_still_answers() {
    let srv = Server::start(&[
        ("DISPATCHD_SERVER_MAX_CONNECTIONS", "30"),
        ("DISPATCHD_SERVER_MAX_CONNECTIONS_PER_IP", "10"),
    ])
    .await;
    // One address fills its share; its next socket is refused at once.
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect_from("127.0.0.9", &srv.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect_from("127.0.0.9", &srv.addr).await;
    assert!(closed_within(&mut extra, Duration::from_secs(5)).await);
    // Others still get in, health included.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.10".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let health = || async {
        let r = other.get(format!("{}/healthz", srv.base)).send().await;
        r.unwrap().status()
    };
    assert_eq!(health().await, StatusCode::OK);
    // The held sockets still work.
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr);
    held[0].write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = held[0].read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The total cap: 30 in all.
    for i in 0..25 {
        held.push(connect_from(&format!("127.0.1.{}", 1 + i % 5), &srv.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = connect_from("127.0.2.1", &srv.addr).await;
    assert!(closed_within(&mut over, Duration::from_secs(5)).await);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = srv.metric("dispatchd_connections_refused_total").await;
    assert!(refused >= 2.0, "refusals counted: {refused}");
    assert_eq!(health().await, StatusCode::OK);
}

/// A retried create (same Idempotency-Key) answered 200 must be as durable
/// as the original's 201: kill -9 the moment any answer arrives, restart,
/// and every acknowledged job must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_is_never_acknowledged_before_it_is_durable() {
    let mut srv = Server::start(&[]).await;
    let (_, resident) = srv.user("resident", &[]).await;
    let mut checked = 0;
    for round in 0..8 {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let first = Arc::new(tokio::sync::Notify::new());
        let mut calls = Vec::new();
        for pair in 0..12 {
            let key = format!("r{round}-p{pair}");
            for _ in 0..2 {
                let (http, base, token, key) = (
                    srv.http.clone(),
                    srv.base.clone(),
                    resident.clone(),
                    key.clone(),
                );
                let (acked, first) = (acked.clone(), first.clone());
                calls.push(tokio::spawn(async move {
                    let r = http
                        .post(format!("{base}/v1/jobs"))
                        .bearer_auth(&token)
                        .header("idempotency-key", key)
                        .json(&json!({"lat": 52.5, "lng": 13.4, "skill": "plumbing"}))
                        .send()
                        .await;
                    if let Ok(r) = r {
                        if r.status().is_success() {
                            if let Ok(v) = r.json::<Value>().await {
                                acked
                                    .lock()
                                    .unwrap()
                                    .push(v["id"].as_str().unwrap().to_string());
                                first.notify_one();
                            }
                        }
                    }
                }));
            }
        }
        first.notified().await;
        srv.kill9();
        for c in calls {
            let _ = c.await;
        }
        srv.restart().await;
        let ids = acked.lock().unwrap().clone();
        for id in ids {
            let (st, v) = srv.get(&format!("/v1/jobs/{id}"), &resident).await;
            assert_eq!(st, StatusCode::OK, "acknowledged job {id} lost: {v}");
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_the_contract_shape() {
    let srv = Server::start(&[]).await;
    let (_, resident) = srv.user("resident", &[]).await;
    let ops = srv.ops();
    // Paths that do not decode.
    for (m, path) in [
        (Method::GET, "/v1/jobs/%ff"),
        (Method::POST, "/v1/jobs/%ff/cancel"),
        (Method::POST, "/v1/jobs/%c3%28/accept"),
        (Method::POST, "/v1/ops/unmatched/%ff/retry"),
    ] {
        let token = if path.contains("ops") {
            &ops
        } else {
            &resident
        };
        let (st, _, v) = srv
            .raw(
                m,
                path,
                Some(token),
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        Server::assert_error(&v, "invalid_input");
    }
    // MessagePack with bytes after the value, like JSON with them.
    let mut body = rmp_serde::to_vec_named(&json!({"lat": 1.0, "lng": 2.0, "skill": "x"})).unwrap();
    body.push(0xc0);
    let (st, _, v) = srv
        .raw(
            Method::POST,
            "/v1/jobs",
            Some(&resident),
            Some("application/msgpack"),
            body,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    Server::assert_error(&v, "invalid_input");
    // A token naming nobody.
    let empty = empty_subject("ops");
    let (st, v) = srv.get("/v1/ops/unmatched", &empty).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    Server::assert_error(&v, "unauthorized");

    // WS: a req_id that is neither string nor integer gets an error.
    let mut ws = Ws::connect(&srv, &resident, false).await;
    ws.send(json!({"type": "ping", "req_id": 1.5})).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["code"], "invalid_input");
    ws.send(json!({"type": "ping", "req_id": [1]})).await;
    assert_eq!(ws.recv().await["type"], "error");
    // Invalid UTF-8 in a text frame: 1007.
    let bad = Frame::message(vec![0x7b, 0xff, 0xfe, 0x7d], OpCode::Data(Data::Text), true);
    ws.send_raw(Message::Frame(bad)).await;
    assert_eq!(close_code(&mut ws).await, Some(1007));
    // A message over the hard cap: 1009.
    let mut ws = Ws::connect(&srv, &resident, false).await;
    ws.send_raw(Message::Binary(vec![0u8; 65_536 * 4 + 1].into()))
        .await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

/// A correctly signed token whose `sub` is empty.
fn empty_subject(role: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "", "role": role, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.inner.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| f.code.into()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_with_an_empty_subject_is_refused() {
    let srv = Server::start(&[]).await;
    let empty = empty_subject("resident");
    let url = format!("ws://{}/v1/ws?token={empty}", srv.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 401)
        }
        other => panic!("upgrade not refused: {:?}", other.map(|_| ())),
    }
}
