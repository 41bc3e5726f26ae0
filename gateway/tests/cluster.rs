//! Several dispatchd nodes behind one Redis: cross-node offers and
//! actions, no double booking across nodes, a node killed with `kill -9`,
//! and Redis restarted mid-run. Each test starts its own redis-server
//! (`./scripts/test.sh` installs it) and three nodes on free loopback ports.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Redis, Server, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A job as `node` shows it once `pred` holds (other nodes apply the
/// stream within their replication lag; a client's own node at once).
async fn job_when(node: &Server, id: &str, token: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, j) = node.get(&format!("/v1/jobs/{id}"), token).await;
        if st == StatusCode::OK && pred(&j) {
            return j;
        }
        assert!(Instant::now() < deadline, "{st} {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `count` commands pairs that change nothing anyone watches: a job for a
/// skill nobody has, cancelled (stream entries for snapshots and trims).
async fn filler(node: &Server, token: &str, count: usize) {
    for _ in 0..count {
        let j = node.create_job(token, 10.0, 10.0, "nobody-has-this").await;
        let path = format!("/v1/jobs/{}/cancel", j["id"].as_str().unwrap());
        let (st, _) = node.post(&path, token, json!({})).await;
        assert!(st.is_success());
    }
}

/// A node that is not ready refuses writes with 503.
async fn refuses_writes(node: &Server, token: &str) {
    let body = json!({"lat": 1.0, "lng": 1.0, "skill": "x"});
    let (st, v) = node.post("/v1/jobs", token, body).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

async fn nodes(redis: &Redis, n: usize, extra: &[(&str, &str)]) -> Vec<Server> {
    let url = redis.url();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut env = vec![("DISPATCHD_REDIS_URL", url.as_str())];
        env.extend_from_slice(extra);
        out.push(Server::start(&env).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_offer_accept_and_updates() {
    let redis = Redis::start();
    let n = nodes(&redis, 3, &[]).await;
    let (a, b, c) = (&n[0], &n[1], &n[2]);
    // Accounts are shared: registered through A, logged in through C.
    let (rid, _) = a.user("resident", &[]).await;
    let email = format!("{}@example.com", common::unique("shared"));
    let (st, _) = a
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"email": email, "password": common::PASSWORD, "name": "W", "role": "worker", "skills": ["plumbing"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = c.login(&email, common::PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let wt = v["token"].as_str().unwrap().to_string();
    let wid = v["user"]["id"].as_str().unwrap().to_string();
    // Duplicate email through another node.
    let (st, _) = b
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"email": email, "password": common::PASSWORD, "name": "W", "role": "resident"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // The worker's socket is on A; the resident creates through B and follows on C.
    let mut wws = Ws::connect(a, &wt, false).await;
    wws.request(json!({"type": "availability", "available": true}))
        .await;
    wws.request(json!({"type": "location", "lat": 52.52, "lng": 13.40}))
        .await;
    let rt = b.token(&rid, "resident", &[]);
    let mut rws = Ws::connect(c, &rt, false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = b.create_job(&rt, 52.521, 13.401, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["status"], "offered", "{job}");
    assert_eq!(job["worker_id"], json!(wid));
    let offer = wws.next_of("offer").await;
    assert_eq!(offer["job_id"], json!(id));

    // Accept over C's HTTP API; everyone sees it.
    let wt2 = c.token(&wid, "worker", &[]);
    let (st, v) = c
        .post(&format!("/v1/jobs/{id}/accept"), &wt2, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    rws.next_where("job", |m| m["job"]["status"] == "accepted")
        .await;
    // Every node applies the stream on its own: the others within their
    // replication lag (a client reads its own writes on its node at once).
    for node in [a, b, c] {
        job_when(node, &id, &rt, |j| j["status"] == "accepted").await;
    }
    // Arrive and complete over the worker's own socket on A.
    wws.request(json!({"type": "arrive", "job_id": id})).await;
    wws.request(json!({"type": "complete", "job_id": id})).await;
    let m = rws
        .next_where("job", |m| m["job"]["status"] == "completed")
        .await;
    assert_eq!(m["job"]["fare_cents"], 1000);
    // Ops on any node: listing and cancel of a fresh job created elsewhere.
    let ops = a.ops();
    let (_, l) = c.get("/v1/jobs", &ops).await;
    assert_eq!(l["jobs"][0]["id"], json!(id));
    let j2 = a.create_job(&rt, 52.521, 13.401, "plumbing").await;
    wws.next_of("offer").await;
    // (C knows of it within its replication lag, like every step above.)
    job_when(c, j2["id"].as_str().unwrap(), &ops, |j| {
        j["status"] == "offered"
    })
    .await;
    let (st, v) = c
        .post(
            &format!("/v1/jobs/{}/cancel", j2["id"].as_str().unwrap()),
            &ops,
            json!({}),
        )
        .await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    let m = wws.next_of("offer_revoked").await;
    assert_eq!(m["reason"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_spread_over_nodes_never_double_book() {
    let redis = Redis::start();
    let n = nodes(&redis, 3, &[("DISPATCHD_DISPATCH_OFFER_TIMEOUT_S", "3")]).await;
    const WORKERS: usize = 6;
    const JOBS: usize = 24;
    // Nearest across nodes first: one job, workers on three nodes.
    let mut workers = Vec::new();
    for i in 0..WORKERS {
        let node = &n[i % 3];
        workers.push(
            node.worker_online(&["cleaning"], 48.0 + i as f64 * 0.01, 11.0)
                .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, r) = n[0].user("resident", &[]).await;
    let probe = n[1]
        .create_job(&r, 48.0 + 4.0 * 0.01 + 0.001, 11.0, "cleaning")
        .await;
    assert_eq!(
        probe["worker_id"],
        json!(workers[4].id),
        "nearest across nodes"
    );
    let w4 = &mut workers[4];
    w4.ws.next_of("offer").await;
    w4.ws
        .request(json!({"type": "decline", "job_id": probe["id"]}))
        .await;

    let mut tasks = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        tasks.push(tokio::spawn(common::serve_offers(w.ws, i, None)));
    }
    let mut creates = Vec::new();
    for k in 0..JOBS {
        let node = &n[k % 3];
        let req = node
            .http
            .post(format!("{}/v1/jobs", node.base))
            .bearer_auth(&r)
            .json(&json!({"lat": 48.0 + (k % 6) as f64 * 0.01, "lng": 11.0, "skill": "cleaning"}));
        creates.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut ids = vec![probe["id"].as_str().unwrap().to_string()];
    for c in creates {
        ids.push(c.await.unwrap());
    }
    let mut completed = Vec::new();
    for t in tasks {
        completed.extend(t.await.unwrap());
    }
    let unique: HashSet<&String> = completed.iter().collect();
    assert_eq!(unique.len(), completed.len(), "a job completed twice");
    assert_eq!(completed.len(), JOBS + 1);
    for (k, id) in ids.iter().enumerate() {
        let j = n[k % 3].job(id, &r).await;
        assert_eq!(j["status"], "completed", "{j}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_loses_nothing_and_its_workers_move() {
    let redis = Redis::start();
    let mut n = nodes(&redis, 3, &[("DISPATCHD_DISPATCH_STALE_AFTER_S", "3")]).await;
    let (rid, r) = n[1].user("resident", &[]).await;
    let mut w = n[0].worker_online(&["locks"], 40.0, -3.7).await;
    // A second worker on the doomed node that never comes back (other skill).
    let gone = n[0].worker_online(&["glazing"], 40.001, -3.7).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        redis
            .get(&format!("dispatchd:presence:{}", w.id))
            .await
            .as_deref()
            .map(|s| !s.is_empty()),
        Some(true),
        "presence kept in redis"
    );
    // A job created and accepted through the node about to die.
    let job = n[0].create_job(&r, 40.0, -3.7, "locks").await;
    let id = job["id"].as_str().unwrap().to_string();
    w.ws.next_of("offer").await;
    w.ws.request(json!({"type": "accept", "job_id": id})).await;
    let waiting = n[0].create_job(&r, 40.0, -3.7, "locks").await;
    assert_eq!(waiting["status"], "searching");
    n[0].kill9();
    drop(w.ws);
    drop(gone.ws);
    // Presence is gone within stale_after_s.
    let deadline = Instant::now() + Duration::from_secs(6);
    while redis
        .get(&format!("dispatchd:presence:{}", w.id))
        .await
        .is_some()
    {
        assert!(Instant::now() < deadline, "presence outlived stale_after_s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The survivors mark the dead node's workers disconnected (NodeDown),
    // not only stale.
    let ops = n[1].ops();
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (_, v) = n[1]
            .get("/v1/workers/nearby?lat=40&lng=-3.7&radius_m=1000", &ops)
            .await;
        let entry = v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == json!(gone.id))
            .cloned()
            .expect("the worker is still known");
        if entry["connected"] == json!(false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dead node's worker still connected: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its jobs are intact on the survivors.
    let j = n[1].job(&id, &r).await;
    assert_eq!(
        (j["status"].clone(), j["worker_id"].clone()),
        (json!("accepted"), json!(w.id))
    );
    assert_eq!(j["resident_id"], json!(rid));
    // The worker reconnects to B and is matchable at once: the waiting job is offered.
    let mut ws = Ws::connect(&n[1], &w.token, false).await;
    ws.request(json!({"type": "arrive", "job_id": id})).await;
    ws.request(json!({"type": "complete", "job_id": id})).await;
    ws.request(json!({"type": "location", "lat": 40.0, "lng": -3.7}))
        .await;
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["job_id"], waiting["id"]);
    job_when(&n[2], &id, &r, |j| j["status"] == "completed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run() {
    let mut redis = Redis::start();
    let n = nodes(&redis, 2, &[]).await;
    let (_, r) = n[0].user("resident", &[]).await;
    let before = n[0].create_job(&r, 1.0, 1.0, "x").await;
    redis.stop();
    // Not ready, and writes are refused rather than kept to itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, _) = n[0].call(Method::GET, "/readyz", None, None).await;
        if st == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(Instant::now() < deadline, "still ready without redis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, v) = n[1]
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 1.0, "lng": 1.0, "skill": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    Server::assert_error(&v, "unavailable");
    // Redis back (its AOF intact): both nodes recover by themselves.
    redis.spawn();
    for node in &n {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (st, _) = node.call(Method::GET, "/readyz", None, None).await;
            if st == StatusCode::OK {
                break;
            }
            assert!(Instant::now() < deadline, "node did not recover");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let j = n[1].job(before["id"].as_str().unwrap(), &r).await;
    assert_eq!(j["status"], "searching");
    let after = n[1].create_job(&r, 2.0, 2.0, "x").await;
    let (_, l) = n[0].get("/v1/jobs", &r).await;
    let ids: Vec<&Value> = l["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| &j["id"])
        .collect();
    assert_eq!(ids, vec![&after["id"], &before["id"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_from_the_shared_snapshot() {
    let redis = Redis::start();
    let extra = [("DISPATCHD_REDIS_SNAPSHOT_EVERY", "10")];
    let mut n = nodes(&redis, 2, &extra).await;
    let (_, r) = n[0].user("resident", &[]).await;
    let mut near = n[0].worker_online(&["hvac"], 45.0, 7.0).await;
    let mut far = n[1].worker_online(&["hvac"], 45.05, 7.0).await;
    // Enough commands for a snapshot and a trim; some jobs end, one stays open.
    let mut ids = Vec::new();
    for _ in 0..4 {
        let j = n[1].create_job(&r, 45.0, 7.0, "hvac").await;
        let id = j["id"].as_str().unwrap().to_string();
        near.ws.next_of("offer").await;
        for step in ["accept", "arrive", "complete"] {
            near.ws.request(json!({"type": step, "job_id": id})).await;
        }
        ids.push(id);
    }
    let open = n[0].create_job(&r, 45.0, 7.0, "hvac").await;
    near.ws.next_of("offer").await;
    near.ws
        .request(json!({"type": "accept", "job_id": open["id"]}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.exists("dispatchd:snap").await {
        assert!(Instant::now() < deadline, "no shared snapshot was written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stream is trimmed behind the snapshot (as far as the other node
    // has reported applying it: a few more commands, matching nobody, let
    // the next snapshots catch up): a joiner cannot replay it all.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let len: u64 = redis::cmd("XLEN")
            .arg("dispatchd:log")
            .query_async(&mut con)
            .await
            .unwrap();
        if len < 26 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stream not trimmed: {len} entries"
        );
        filler(&n[0], &r, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // An offer open before the third node starts (near is busy: far gets it).
    let pending = n[0].create_job(&r, 45.05, 7.0, "hvac").await;
    let offer = far.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], pending["id"]);
    // A third node joins: snapshot + the stream after it.
    n.push(Server::start(&[("DISPATCHD_REDIS_URL", redis.url().as_str()), extra[0]]).await);
    let c = &n[2];
    // The worker's app connecting to the new node gets its open offer again,
    // as it would from a node that saw the offer made (API.md, resume).
    let mut again = Ws::connect(c, &far.token, false).await;
    let resent = again.next_of("offer").await;
    assert_eq!(
        (&resent["job_id"], &resent["expires_at"]),
        (&offer["job_id"], &offer["expires_at"])
    );
    far.ws
        .request(json!({"type": "decline", "job_id": pending["id"]}))
        .await;
    for id in &ids {
        assert_eq!(c.job(id, &r).await["status"], "completed");
    }
    let o = c.job(open["id"].as_str().unwrap(), &r).await;
    assert_eq!(
        (o["status"].clone(), o["worker_id"].clone()),
        (json!("accepted"), json!(near.id))
    );
    // It matches like the others: `near` is busy, so a job there goes to `far`.
    let next = c.create_job(&r, 45.0, 7.0, "hvac").await;
    assert_eq!(next["worker_id"], json!(far.id), "{next}");
    for node in &n[..2] {
        let nid = next["id"].as_str().unwrap();
        job_when(node, nid, &r, |j| j["worker_id"] == json!(far.id)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_back_without_its_data_keeps_nodes_not_ready() {
    let mut redis = Redis::start();
    let n = nodes(&redis, 1, &[]).await;
    let (_, r) = n[0].user("resident", &[]).await;
    n[0].create_job(&r, 1.0, 1.0, "x").await;
    // Redis restarts empty (its AOF gone): the node must not carry on as if
    // the shared log still held what it applied.
    redis.stop();
    for e in std::fs::read_dir(&redis.dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }
    redis.spawn();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (st, _) = n[0].call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        st,
        StatusCode::SERVICE_UNAVAILABLE,
        "ready on an empty redis"
    );
    refuses_writes(&n[0], &r).await;
}

/// The stream is never trimmed past a live node's position (here a slow
/// one, simulated by its report), is trimmed once that node is gone, and a
/// node that finds the stream trimmed past it stops being ready instead of
/// applying entries after a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_waits_for_slow_nodes_and_a_trim_past_a_node_is_caught() {
    let redis = Redis::start();
    let n = nodes(&redis, 1, &[("DISPATCHD_REDIS_SNAPSHOT_EVERY", "10")]).await;
    let (_, r) = n[0].user("resident", &[]).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let first = |mut con: redis::aio::MultiplexedConnection| async move {
        let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg("dispatchd:log")
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        r.ids.first().map(|e| e.id.clone())
    };
    // A slow node that has applied nothing yet.
    let (secs, micros): (String, String) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    let ms = secs.parse::<u64>().unwrap() * 1000 + micros.parse::<u64>().unwrap() / 1000;
    let _: () = redis::cmd("HSET")
        .arg("dispatchd:applied")
        .arg("slow")
        .arg(format!("{ms} 0-1"))
        .query_async(&mut con)
        .await
        .unwrap();
    let burst = || filler(&n[0], &r, 8);
    burst().await;
    let start = first(con.clone()).await.expect("entries");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.exists("dispatchd:snap").await {
        assert!(Instant::now() < deadline, "no shared snapshot was written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    burst().await;
    assert_eq!(
        first(con.clone()).await.as_deref(),
        Some(start.as_str()),
        "trimmed past a live node's position"
    );
    // The slow node goes away: the next snapshots trim.
    let _: () = redis::cmd("HDEL")
        .arg("dispatchd:applied")
        .arg("slow")
        .query_async(&mut con)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while first(con.clone()).await.as_deref() == Some(start.as_str()) {
        assert!(Instant::now() < deadline, "never trimmed");
        burst().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (st, _) = n[0].call(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK);
    // Someone trims past this node (as if it had been away too long).
    let _: () = redis::cmd("SET")
        .arg("dispatchd:trimmed")
        .arg("99999999999999-0")
        .query_async(&mut con)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, _) = n[0].call(Method::GET, "/readyz", None, None).await;
        if st == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still ready after the stream was trimmed past it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    refuses_writes(&n[0], &r).await;
}

/// Notifications on three nodes: whichever node applies the command, the
/// deliveries are in the shared outbox; only the timer-lease holder sends;
/// when it is killed, the next holder delivers each notification once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_delivered_once_when_the_delivering_node_dies() {
    use common::sinks::Receiver;
    let redis = Redis::start();
    let extra = [
        ("DISPATCHD_NOTIFY_ALLOW_PRIVATE_TARGETS", "true"),
        (
            "DISPATCHD_NOTIFY_RETRY_DELAYS_S",
            "0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3",
        ),
        ("DISPATCHD_NOTIFY_TIMEOUT_S", "2"),
    ];
    let mut n = nodes(&redis, 3, &extra).await;
    let hooks = Receiver::start().await;
    hooks.answer(503);
    let url = format!("{}/hook", hooks.url);
    let (st, v) = n[0]
        .post(
            "/v1/ops/webhooks",
            &n[0].ops(),
            json!({"url": url, "events": ["job.created"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, r) = n[1].user("resident", &[]).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        let j = n[i % 3].create_job(&r, 10.0, 10.0, "nobody").await;
        jobs.push(j["id"].as_str().unwrap().to_string());
    }
    // Attempts are being made (and refused): find the node making them.
    hooks
        .wait_for("/hook", Duration::from_secs(15), |g| g.len() >= 6)
        .await;
    let mut sender = None;
    for (i, node) in n.iter().enumerate() {
        if node.metric("dispatchd_notifications_total").await > 0.0 {
            assert!(sender.is_none(), "two nodes deliver at once");
            sender = Some(i);
        }
    }
    let sender = sender.expect("one node delivers");
    n[sender].kill9();
    let switched = hooks.received("/hook").len();
    hooks.answer(200);
    let done = |g: &[common::sinks::Received]| {
        let ok: HashSet<String> = g[switched.min(g.len())..]
            .iter()
            .map(|h| h.json()["data"]["id"].as_str().unwrap().to_string())
            .collect();
        jobs.iter().all(|j| ok.contains(j))
    };
    hooks.wait_for("/hook", Duration::from_secs(40), done).await;
    // Accepted (200) once each: nothing answered 200 twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = hooks.received("/hook");
    let after: Vec<String> = got[switched..]
        .iter()
        .map(|h| h.headers["webhook-id"].clone())
        .collect();
    let unique: HashSet<&String> = after.iter().collect();
    assert_eq!(
        unique.len(),
        after.len(),
        "a notification delivered twice: {after:?}"
    );
    assert_eq!(unique.len(), jobs.len());
    // The log agrees on a surviving node.
    let live = n.iter().enumerate().find(|(i, _)| *i != sender).unwrap().1;
    let (st, v) = live
        .get("/v1/ops/deliveries?status=delivered", &live.ops())
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["deliveries"].as_array().unwrap().len(), jobs.len(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_dispatch_once_across_nodes_when_one_dies() {
    let redis = Redis::start();
    let mut n = nodes(&redis, 3, &[]).await;
    let ops = n[0].ops();
    let (rid, _) = n[1].user("resident", &[]).await;
    let (st, p) = n[2]
        .post(
            "/v1/properties",
            &ops,
            json!({"name": "Block A", "lat": 10.0, "lng": 10.0, "owner_id": rid}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    // Every node knows of it within its replication lag.
    for node in &n {
        let path = format!("/v1/properties/{}", p["id"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while node.get(&path, &ops).await.0 != StatusCode::OK {
            assert!(Instant::now() < deadline, "{path} on a node");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 1_500;
    let start =
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(start))
            .to_string();
    let mut ids = Vec::new();
    for i in 0..6 {
        let (st, v) = n[i % 3]
            .post(
                "/v1/schedules",
                &ops,
                json!({"property_id": p["id"], "title": format!("Check {i}"), "skill": "nobody-has-this",
                       "every": {"unit": "day", "interval": 1}, "start_at": start}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // A node dies around the due time (perhaps the one driving time).
    n[0].kill9();
    let live = [&n[1], &n[2]];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut jobs = Vec::new();
    for id in &ids {
        loop {
            let (_, v) = live[0].get(&format!("/v1/schedules/{id}"), &ops).await;
            if let Some(j) = v["open_job_id"].as_str() {
                jobs.push(j.to_string());
                break;
            }
            assert!(Instant::now() < deadline, "never dispatched: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in live {
        let (_, v) = node.get("/v1/jobs?limit=500", &ops).await;
        for (id, job) in ids.iter().zip(&jobs) {
            let made: Vec<&Value> = v["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|j| j["schedule_id"] == id.as_str())
                .collect();
            assert_eq!(made.len(), 1, "one job per occurrence: {made:?}");
            assert_eq!(made[0]["id"], job.as_str());
        }
    }
    // A log written through one node is read through the other.
    let (st, l) = n[1]
        .post(
            "/v1/logs",
            &ops,
            json!({"schedule_id": ids[0], "issues_found": "none", "notes": "by hand"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let (_, v) = n[2]
        .get(&format!("/v1/logs?schedule_id={}", ids[0]), &ops)
        .await;
    assert_eq!(v["logs"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["logs"][0]["id"], l["id"]);
    // The roll is the same on every node (the other within its lag).
    let (_, a) = n[1].get(&format!("/v1/schedules/{}", ids[0]), &ops).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, b) = n[2].get(&format!("/v1/schedules/{}", ids[0]), &ops).await;
        if a["next_due_at"] == b["next_due_at"] {
            break;
        }
        assert!(Instant::now() < deadline, "{a} vs {b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Attachments on a cluster: uploaded through one node, served by another
/// (which has never seen the bytes: it fetches them from Redis), listed by
/// a job created through a third, whose offered worker (its socket on the
/// first) fetches the photo through the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_served_by_every_node() {
    let redis = Redis::start();
    let n = nodes(&redis, 3, &[]).await;
    let (a, b, c) = (&n[0], &n[1], &n[2]);
    let (rid, _) = a.user("resident", &[]).await;
    let rt = a.token(&rid, "resident", &[]);
    let photo = common::png(42);
    let id = a.upload(&rt, "image/png", photo.clone()).await;
    let (st, _, bytes) = b.attachment(&id, &rt, None).await;
    assert_eq!((st, bytes == photo), (StatusCode::OK, true));
    assert!(
        b.data_dir()
            .join("attachments")
            .join(&common::sha256_hex(&photo)[..2])
            .exists(),
        "node B keeps its own copy once fetched"
    );

    let mut w = c.worker_online(&["plumbing"], 48.8566, 2.3522).await;
    let (st, job) = c
        .post(
            "/v1/jobs",
            &rt,
            json!({"lat": 48.8567, "lng": 2.3523, "skill": "plumbing", "attachments": [id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{job}");
    let offer = w.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], job["id"]);
    let (st, _, bytes) = b.attachment(&id, &w.token, None).await;
    assert_eq!((st, bytes == photo), (StatusCode::OK, true));
    let stranger = a.token("w-stranger", "worker", &[]);
    assert_eq!(
        a.attachment(&id, &stranger, None).await.0,
        StatusCode::NOT_FOUND
    );
}
