//! Resuming after a reconnect (API.md v1.1): `seq` on every offer,
//! offer_revoked and job message; `?since=N` replays what was missed, in
//! order, then `resumed`, then live messages with nothing skipped or
//! repeated; the open offer is re-sent on every connect; a resume from
//! before the server's memory is a gap. Runs on both backends.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn seq(m: &Value) -> u64 {
    m["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {m}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_since_replays_what_was_missed() {
    let mut s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let mut w = s.worker_online(&["plumbing"], 52.52, 13.405).await;
    let mut rs = Ws::connect(&s, &r, false).await;
    let job = s.create_job(&r, 52.521, 13.405, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    let offer = w.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], json!(id));
    let offer_seq = seq(&offer);
    let first = rs.next_where("job", |m| m["job"]["id"] == json!(id)).await;
    assert!(seq(&first) >= offer_seq);

    // The worker's phone drops: on reconnect the open offer comes again,
    // with the deadline it had.
    drop(w.ws);
    let mut ws2 = Ws::connect(&s, &w.token, false).await;
    let again = ws2.next_of("offer").await;
    assert_eq!(again["job_id"], json!(id));
    assert_eq!(again["expires_at"], offer["expires_at"]);
    assert_eq!(seq(&again), offer_seq);

    // The resident is away while the job moves on.
    let last_seen = seq(&first);
    drop(rs);
    ws2.request(json!({"type": "accept", "job_id": id})).await;
    ws2.request(json!({"type": "arrive", "job_id": id})).await;
    // Let both changes be published before the resident comes back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = Ws::connect_query(&s, &r, &format!("since={last_seen}")).await;
    let mut got = Vec::new();
    let resumed = loop {
        let m = back.recv().await;
        if m["type"] == "resumed" {
            break m;
        }
        got.push(m);
    };
    // (v1.2: the worker's position at acceptance comes too, in order.)
    assert!(
        got.iter()
            .all(|m| m["type"] == "job" || m["type"] == "tracking"),
        "{got:?}"
    );
    let statuses: Vec<&str> = got
        .iter()
        .filter(|m| m["type"] == "job")
        .map(|m| m["job"]["status"].as_str().unwrap())
        .collect();
    // One `job` message per change, in order; each carries the job as it
    // stood when published, so on a loaded machine the first may already
    // show the second change.
    assert_eq!(statuses.len(), 2, "{got:?}");
    assert!(matches!(statuses[0], "accepted" | "arrived"), "{got:?}");
    assert_eq!(statuses[1], "arrived", "{got:?}");
    // In order: each change's `job` message after the last, and the
    // position at acceptance with the acceptance's own `seq`, after its
    // `job` message (v1.2).
    let jobs: Vec<&Value> = got.iter().filter(|m| m["type"] == "job").collect();
    assert!(jobs.windows(2).all(|p| seq(p[0]) < seq(p[1])), "in order");
    assert!(got.windows(2).all(|p| seq(&p[0]) <= seq(&p[1])), "in order");
    assert!(
        got.windows(2)
            .all(|p| p[1]["type"] != "tracking" || p[0]["type"] == "job"),
        "{got:?}"
    );
    assert!(got.iter().all(|m| seq(m) > last_seen));
    assert_eq!(resumed["gap"], Value::Null, "{resumed}");
    let resumed_at = seq(&resumed);
    assert!(resumed_at >= seq(got.last().unwrap()));
    // Live again: the next change, once.
    ws2.request(json!({"type": "complete", "job_id": id})).await;
    let done = back.next_of("job").await;
    assert_eq!(done["job"]["status"], "completed");
    assert!(seq(&done) > resumed_at);
    assert!(
        back.recv_within(Duration::from_millis(300)).await.is_none(),
        "nothing repeated"
    );

    // Nothing missed: an empty replay.
    let mut quiet = Ws::connect_query(&s, &r, &format!("since={}", seq(&done))).await;
    let m = quiet.recv().await;
    assert_eq!(m["type"], "resumed", "{m}");
    assert_eq!(m["gap"], Value::Null);

    // A bad `since` is refused at the upgrade.
    let url = format!("ws://{}/v1/ws?token={r}&since=minus-one", s.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST)
        }
        other => panic!("bad since accepted: {:?}", other.map(|_| ())),
    }

    // The window survives kill -9 (API.md v1.2): the same replay, then
    // `resumed` without a gap.
    drop((back, quiet, ws2));
    s.restart().await;
    let mut late = Ws::connect_query(&s, &r, &format!("since={last_seen}")).await;
    let mut again = Vec::new();
    let m = loop {
        let m = late.recv().await;
        if m["type"] == "resumed" {
            break m;
        }
        again.push(m);
    };
    assert_eq!(m["gap"], Value::Null, "{m}");
    let seqs: Vec<u64> = again.iter().map(seq).collect();
    let before: Vec<u64> = got.iter().map(seq).chain([seq(&done)]).collect();
    assert_eq!(seqs, before, "the same messages, once, in order: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_open_at_kill_9_is_revoked_and_offered_again() {
    // One process restarting; a cluster keeps its offers across a node's
    // restart (the offer is re-sent on connect: the test above).
    if redis_backend() {
        return;
    }
    let mut s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let mut w = s.worker_online(&["plumbing"], 52.52, 13.405).await;
    let job = s.create_job(&r, 52.521, 13.405, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    let offer = w.ws.next_of("offer").await;
    let since = seq(&offer);
    drop(w.ws);
    s.restart().await;
    // The worker's app comes back, resumes, and says it is available.
    let mut ws = Ws::connect_query(&s, &w.token, &format!("since={since}")).await;
    let revoked = ws.next_of("offer_revoked").await;
    assert_eq!(
        (revoked["job_id"].as_str(), revoked["reason"].as_str()),
        (Some(id.as_str()), Some("expired")),
        "{revoked}"
    );
    assert!(seq(&revoked) > since);
    let m = ws.next_of("resumed").await;
    assert_eq!(m["gap"], Value::Null, "{m}");
    ws.request(json!({"type": "availability", "available": true}))
        .await;
    ws.request(json!({"type": "location", "lat": 52.52, "lng": 13.405}))
        .await;
    let again = ws.next_of("offer").await;
    assert_eq!(again["job_id"], json!(id));
    assert!(seq(&again) > seq(&revoked));
}
