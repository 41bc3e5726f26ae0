//! API.md v1.2, "Profile" and "Tracking the engineer on the way", end to
//! end on a real process (and, under E2E_BACKEND=redis, on a one-node
//! cluster): `GET`/`PATCH /v1/me`, `Job.worker_name`, `worker_position`,
//! and `tracking` messages — throttled per job, only to the resident and the
//! job's subscribers, stopped at arrival, replayed by `?since=`.

mod common;

use std::time::Duration;

use common::{haversine_m, millis, Server, Ws, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A worker registered under `name`, connected, available at (lat, lng).
async fn named_worker(
    s: &Server,
    name: &str,
    skill: &str,
    lat: f64,
    lng: f64,
) -> (String, String, Ws) {
    let email = format!("{}@example.com", common::unique("w"));
    let body = json!({"email": email, "password": PASSWORD, "name": name, "role": "worker", "skills": [skill]});
    let (st, v) = s
        .call(Method::POST, "/v1/auth/register", None, Some(body))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = s.login(&email, PASSWORD).await;
    let token = v["token"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(s, &token, false).await;
    ws.request(json!({"type": "availability", "available": true}))
        .await;
    ws.request(json!({"type": "location", "lat": lat, "lng": lng}))
        .await;
    (id, token, ws)
}

/// `eta_s` as the contract defines it (±1 s: the engine's distance and
/// this haversine may round to either side of a whole second).
fn assert_eta(v: &Value, from: (f64, f64), to: (f64, f64)) {
    let want = (haversine_m(from, to) / 8.3).ceil() as i64;
    let got = v["eta_s"]
        .as_i64()
        .unwrap_or_else(|| panic!("no eta_s: {v}"));
    assert!((got - want).abs() <= 1, "eta_s {got}, expected {want}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_reads_and_changes_what_the_contract_says() {
    let s = Server::start(&[]).await;
    let (rid, resident) = s.user("resident", &[]).await;
    let (st, me) = s.get("/v1/me", &resident).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["id"], rid.as_str());
    assert_eq!(me["role"], "resident");
    assert_eq!(me["name"], "Test User");
    assert!(
        me["email"].as_str().unwrap().ends_with("@example.com"),
        "{me}"
    );
    assert!(me["skills"].is_null() && me["available"].is_null(), "{me}");

    let (st, me) = s
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&resident),
            Some(json!({"name": "  Rita Resident "})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Rita Resident");
    // Residents have no skills; nothing else can be set here; names are 1..100.
    for (body, field) in [
        (json!({"skills": ["plumbing"]}), "skills"),
        (json!({"role": "ops"}), "role"),
        (json!({"email": "x@example.com"}), "email"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
    ] {
        let (st, v) = s
            .call(Method::PATCH, "/v1/me", Some(&resident), Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        Server::assert_error(&v, "invalid_input");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    let (st, v) = s.call(Method::GET, "/v1/me", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");

    // A worker: skills and availability, and a skill change that matching follows.
    let (wid, worker, mut ws) = named_worker(&s, "Wendy Worker", "plumbing", 51.5, -0.12).await;
    let (_, me) = s.get("/v1/me", &worker).await;
    assert_eq!(me["id"], wid.as_str());
    assert_eq!(me["skills"], json!(["plumbing"]));
    assert_eq!(me["available"], true);
    let (st, me) = s
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&worker),
            Some(json!({"skills": ["roofing"], "name": "Wendy W."})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["skills"], json!(["roofing"]));
    assert_eq!(me["name"], "Wendy W.");
    let (st, v) = s
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&worker),
            Some(json!({"skills": ["Bad Skill"]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let job = s.create_job(&resident, 51.5, -0.12, "roofing").await;
    let offer = ws.next_where("offer", |m| m["job_id"] == job["id"]).await;
    assert_eq!(offer["skill"], "roofing");
    // …offered under the new name.
    let j = s.job(job["id"].as_str().unwrap(), &resident).await;
    assert_eq!(j["worker_name"], "Wendy W.", "{j}");

    // Both survive a restart.
    let mut s = s;
    drop(ws);
    s.restart().await;
    let (_, me) = s.get("/v1/me", &worker).await;
    assert_eq!(
        (me["name"].clone(), me["skills"].clone()),
        (json!("Wendy W."), json!(["roofing"]))
    );
    let (_, me) = s.get("/v1/me", &resident).await;
    assert_eq!(me["name"], "Rita Resident");

    // A minted token without an account: no email, nothing stored to change.
    let minted = s.token("ghost", "resident", &[]);
    let (st, me) = s.get("/v1/me", &minted).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert!(me["email"].is_null(), "{me}");
    let (st, v) = s
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&minted),
            Some(json!({"name": "Ghost"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resident_follows_the_worker_on_the_way_and_nobody_else_does() {
    let s = Server::start(&[("DISPATCHD_TRACKING_EVERY_S", "1")]).await;
    let (_, resident) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;
    let ops = s.ops();
    let mut rws = Ws::connect(&s, &resident, false).await;
    let mut other_ws = Ws::connect(&s, &other, false).await;
    let home = (51.5, -0.12);
    let start = (51.51, -0.12);
    let (wid, worker, mut wws) =
        named_worker(&s, "Ann Engineer", "plumbing", start.0, start.1).await;
    let job = s.create_job(&resident, home.0, home.1, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    let mut ops_ws = Ws::connect(&s, &ops, false).await;
    ops_ws
        .request(json!({"type": "subscribe", "job_id": id}))
        .await;

    // Offered: the resident sees who.
    let offered = rws
        .next_where("job", |m| m["job"]["status"] == "offered")
        .await;
    assert_eq!(offered["job"]["worker_name"], "Ann Engineer", "{offered}");
    assert_eq!(offered["job"]["worker_id"], wid.as_str());
    wws.next_where("offer", |m| m["job_id"] == id.as_str())
        .await;
    wws.request(json!({"type": "accept", "job_id": id})).await;

    // Accepted with a fresh position: the job message, then at once where the worker is.
    let accepted = rws
        .next_where("job", |m| m["job"]["status"] == "accepted")
        .await;
    let first = rws.next_of("tracking").await;
    assert_eq!(first["job_id"], id.as_str());
    // The position sent on acceptance is the one reported before it, and says when.
    assert!(
        millis(&first["at"]) <= millis(&accepted["job"]["accepted_at"]),
        "{first} {accepted}"
    );
    assert_eq!(
        (first["lat"].as_f64(), first["lng"].as_f64()),
        (Some(start.0), Some(start.1))
    );
    assert_eta(&first, start, home);
    // Sent with the job message's seq, right after it.
    assert_eq!(first["seq"], accepted["seq"], "{first} {accepted}");
    let ops_first = ops_ws.next_of("tracking").await;
    assert_eq!(ops_first["seq"], first["seq"]);

    // GET: the resident and ops see where, the worker does not.
    let j = s.job(&id, &resident).await;
    assert_eq!(j["worker_position"]["lat"], start.0, "{j}");
    assert_eta(&j["worker_position"], start, home);
    assert!(s.job(&id, &ops).await["worker_position"].is_object());
    assert!(s.job(&id, &worker).await["worker_position"].is_null());

    // Reports every 100 ms for 3.5 s: at most one message a second, each
    // from the latest report, none to the worker or another resident.
    let mut seen = vec![first.clone()];
    let started = std::time::Instant::now();
    let drive = async {
        for i in 1..=35 {
            let lat = start.0 - 0.0002 * i as f64;
            wws.request(json!({"type": "location", "lat": lat, "lng": start.1}))
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let listen = async {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(3800);
        while let Ok(Some(m)) =
            tokio::time::timeout_at(deadline, rws.recv_within(Duration::from_secs(5))).await
        {
            if m["type"] == "tracking" {
                seen.push(m);
            }
        }
    };
    tokio::join!(drive, listen);
    // What the last reports still owe comes within the interval.
    while let Some(m) = rws.recv_within(Duration::from_millis(1500)).await {
        if m["type"] == "tracking" {
            seen.push(m);
        }
    }
    // The throttle: 35 reports, but no more messages than whole seconds
    // the reporting took (on a slow machine it takes longer than 3.5 s),
    // plus the one at acceptance and the one owed at the end.
    let most = started.elapsed().as_secs() as usize + 2;
    assert!(
        seen.len() >= 3 && seen.len() <= most,
        "{} tracking messages (at most {most}): {seen:?}",
        seen.len()
    );
    // 35 reports over 3.5 s, at most one message a second: the count
    // above. Each message's `at` is when its position was reported.
    for pair in seen.windows(2) {
        assert!(
            millis(&pair[1]["at"]) > millis(&pair[0]["at"]),
            "reported in order: {pair:?}"
        );
        assert!(pair[1]["seq"].as_u64() > pair[0]["seq"].as_u64());
        assert!(
            pair[1]["lat"].as_f64() < pair[0]["lat"].as_f64(),
            "the marker moves: {pair:?}"
        );
        let lat = pair[1]["lat"].as_f64().unwrap();
        assert_eta(&pair[1], (lat, start.1), home);
    }
    while let Some(m) = wws.recv_within(Duration::from_millis(100)).await {
        assert_ne!(m["type"], "tracking", "the worker got {m}");
    }
    let stray = other_ws.recv_within(Duration::from_millis(100)).await;
    assert!(stray.is_none(), "another resident got {stray:?}");

    // Replayed by since: a socket resuming from the first message gets the rest.
    let from = first["seq"].as_u64().unwrap();
    let mut again = Ws::connect_query(&s, &resident, &format!("since={from}")).await;
    let mut replayed = Vec::new();
    loop {
        let m = again.recv().await;
        if m["type"] == "resumed" {
            assert!(m.get("gap").is_none() || m["gap"] == false, "{m}");
            break;
        }
        if m["type"] == "tracking" {
            replayed.push(m["seq"].clone());
        }
    }
    let expected: Vec<Value> = seen[1..].iter().map(|m| m["seq"].clone()).collect();
    assert_eq!(replayed, expected);

    // Arrived: tracking stops, and the position is gone from the job.
    wws.request(json!({"type": "arrive", "job_id": id})).await;
    rws.next_where("job", |m| m["job"]["status"] == "arrived")
        .await;
    for i in 0..15 {
        let lat = home.0 + 0.00001 * i as f64;
        wws.request(json!({"type": "location", "lat": lat, "lng": home.1}))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Some(m) = rws.recv_within(Duration::from_millis(300)).await {
        assert_ne!(m["type"], "tracking", "after arrival: {m}");
    }
    assert!(s.job(&id, &resident).await["worker_position"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_stops_at_cancel_and_when_the_position_goes_stale() {
    let s = Server::start(&[
        ("DISPATCHD_TRACKING_EVERY_S", "1"),
        ("DISPATCHD_DISPATCH_STALE_AFTER_S", "2"),
    ])
    .await;
    let (_, resident) = s.user("resident", &[]).await;
    let mut rws = Ws::connect(&s, &resident, false).await;
    let (_, worker, mut wws) = named_worker(&s, "Bo", "plumbing", 51.501, -0.12).await;
    let job = s.create_job(&resident, 51.5, -0.12, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    wws.next_where("offer", |m| m["job_id"] == id.as_str())
        .await;
    wws.request(json!({"type": "location", "lat": 51.501, "lng": -0.12}))
        .await;
    let (st, v) = s
        .post(&format!("/v1/jobs/{id}/accept"), &worker, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    rws.next_of("tracking").await;
    assert!(s.job(&id, &resident).await["worker_position"].is_object());
    // No report for longer than stale_after_s: no position to show.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(s.job(&id, &resident).await["worker_position"].is_null());
    // Cancelled: the next reports go nowhere.
    let (st, v) = s
        .post(&format!("/v1/jobs/{id}/cancel"), &resident, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    rws.next_where("job", |m| m["job"]["status"] == "cancelled")
        .await;
    for i in 0..12 {
        wws.request(json!({"type": "location", "lat": 51.5005 + 0.0001 * i as f64, "lng": -0.12}))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Some(m) = rws.recv_within(Duration::from_millis(300)).await {
        assert_ne!(m["type"], "tracking", "after cancel: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_survives_a_kill_9_and_resumes_without_a_gap() {
    if common::redis_backend() {
        // The cluster's resume across a restart is its stream's (cluster.rs).
        return;
    }
    let mut s = Server::start(&[("DISPATCHD_TRACKING_EVERY_S", "1")]).await;
    let (_, resident) = s.user("resident", &[]).await;
    let mut rws = Ws::connect(&s, &resident, false).await;
    let (_, worker, mut wws) = named_worker(&s, "Cy", "plumbing", 51.52, -0.12).await;
    let job = s.create_job(&resident, 51.5, -0.12, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    wws.next_where("offer", |m| m["job_id"] == id.as_str())
        .await;
    wws.request(json!({"type": "accept", "job_id": id})).await;
    let first = rws.next_of("tracking").await;
    let since = first["seq"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    wws.request(json!({"type": "location", "lat": 51.515, "lng": -0.12}))
        .await;
    let second = rws.next_of("tracking").await;
    assert_eq!(second["lat"], 51.515);
    drop((rws, wws));
    s.kill9();
    s.restart().await;
    // The resident's app resumes from the first message: the second comes again.
    let mut rws = Ws::connect_query(&s, &resident, &format!("since={since}")).await;
    let m = rws.next_of("tracking").await;
    assert_eq!(m["seq"], second["seq"], "{m}");
    let r = rws.next_of("resumed").await;
    assert!(r.get("gap").is_none() || r["gap"] == false, "{r}");
    // Still accepted after the restart: the worker's next report is tracked.
    let mut wws = Ws::connect(&s, &worker, false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    wws.request(json!({"type": "location", "lat": 51.51, "lng": -0.12}))
        .await;
    let m = rws.next_of("tracking").await;
    assert_eq!(m["lat"], 51.51);
    assert!(m["seq"].as_u64() > second["seq"].as_u64());
    assert_eq!(s.job(&id, &resident).await["worker_name"], "Cy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_too_soon_is_sent_when_the_interval_ends() {
    let s = Server::start(&[("DISPATCHD_TRACKING_EVERY_S", "2")]).await;
    let (_, resident) = s.user("resident", &[]).await;
    let mut rws = Ws::connect(&s, &resident, false).await;
    let (_, _, mut wws) = named_worker(&s, "Di", "plumbing", 51.51, -0.12).await;
    let job = s.create_job(&resident, 51.5, -0.12, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    wws.next_where("offer", |m| m["job_id"] == id.as_str())
        .await;
    wws.request(json!({"type": "location", "lat": 51.509, "lng": -0.12}))
        .await;
    wws.request(json!({"type": "accept", "job_id": id})).await;
    let first = rws.next_of("tracking").await;
    // Within the interval: not sent now, not dropped either.
    wws.request(json!({"type": "location", "lat": 51.508, "lng": -0.12}))
        .await;
    let owed = rws.next_of("tracking").await;
    assert_eq!(owed["lat"], 51.508, "{owed}");
    let (t0, t1) = (millis(&first["at"]), millis(&owed["at"]));
    // `at` is when it was reported, inside the interval…
    assert!(t1 > t0 && t1 < t0 + 2000, "{first} {owed}");
    // …and it was sent no sooner than the interval allows.
    assert!(owed["seq"].as_u64() > first["seq"].as_u64());
    let stray = rws.recv_within(Duration::from_millis(2500)).await;
    assert!(stray.is_none(), "owed once: {stray:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_name_shows_on_the_job_and_a_declined_worker_learns_no_other() {
    let s = Server::start(&[]).await;
    let (_, resident) = s.user("resident", &[]).await;
    let mut rws = Ws::connect(&s, &resident, false).await;
    let (_, first_token, mut first) = named_worker(&s, "Ed", "plumbing", 51.5001, -0.12).await;
    let (_, second_token, mut second) = named_worker(&s, "Flo", "plumbing", 51.502, -0.12).await;
    let job = s.create_job(&resident, 51.5, -0.12, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    first
        .next_where("offer", |m| m["job_id"] == id.as_str())
        .await;
    first
        .request(json!({"type": "decline", "job_id": id}))
        .await;
    second
        .next_where("offer", |m| m["job_id"] == id.as_str())
        .await;
    second
        .request(json!({"type": "accept", "job_id": id}))
        .await;
    rws.next_where("job", |m| {
        m["job"]["status"] == "accepted" && m["job"]["worker_name"] == "Flo"
    })
    .await;
    let seen_by_first = s.job(&id, &first_token).await;
    assert!(seen_by_first["worker_name"].is_null(), "{seen_by_first}");
    let (_, list) = s.get("/v1/jobs", &first_token).await;
    assert!(
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["worker_name"].is_null()),
        "{list}"
    );
    assert_eq!(s.job(&id, &second_token).await["worker_name"], "Flo");
    // Renamed on the way: the resident hears of it at once.
    let (st, v) = s
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&second_token),
            Some(json!({"name": "Florence"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let m = rws
        .next_where("job", |m| m["job"]["worker_name"] == "Florence")
        .await;
    assert_eq!(m["job"]["status"], "accepted");
    assert_eq!(s.job(&id, &resident).await["worker_name"], "Florence");
}
