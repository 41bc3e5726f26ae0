//! End to end over WebSockets: nearest-worker offers against a brute-force
//! computation, decline and timeout to the next worker, waiting jobs,
//! dead letters and retry, cancel at every stage, billing, pushes to
//! residents and subscribers, every WS message, MessagePack, and many
//! concurrent jobs against fewer workers with no worker ever holding two.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{haversine_m, millis, Server, Ws};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearest_matchable_worker_gets_the_offer() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let centre = (52.52, 13.405);
    let mut workers = Vec::new();
    for i in 0..36 {
        let skill = if i % 3 == 0 { "electrics" } else { "plumbing" };
        let pos = (
            centre.0 + rng.random_range(-0.05..0.05),
            centre.1 + rng.random_range(-0.08..0.08),
        );
        let mut w = s.worker_online(&[skill], pos.0, pos.1).await;
        // Every fourth worker goes unavailable: not matchable.
        let available = i % 4 != 1;
        if !available {
            w.ws.request(json!({"type": "availability", "available": false}))
                .await;
        }
        workers.push((w, skill, pos, available));
    }
    let mut busy: HashSet<String> = HashSet::new();
    for round in 0..6 {
        let job_pos = (
            centre.0 + rng.random_range(-0.04..0.04),
            centre.1 + rng.random_range(-0.06..0.06),
        );
        let skill = if round % 2 == 0 {
            "plumbing"
        } else {
            "electrics"
        };
        let expected = workers
            .iter()
            .filter(|(w, sk, _, avail)| *sk == skill && *avail && !busy.contains(&w.id))
            .map(|(w, _, pos, _)| (haversine_m(*pos, job_pos), w.id.clone()))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap();
        let job = s.create_job(&r, job_pos.0, job_pos.1, skill).await;
        assert_eq!(job["status"], "offered", "{job}");
        assert_eq!(job["worker_id"], json!(expected.1), "round {round}");
        assert_eq!(job["attempts"], 1);
        let (w, ..) = workers
            .iter_mut()
            .find(|(w, ..)| w.id == expected.1)
            .unwrap();
        let offer = w.ws.next_of("offer").await;
        assert_eq!(offer["job_id"], job["id"]);
        assert_eq!(offer["skill"], skill);
        assert_eq!(offer["lat"], job_pos.0);
        assert_eq!(offer["description"], "e2e");
        let d = offer["distance_m"].as_f64().unwrap();
        assert!(
            (d - expected.0).abs() < 1.0 + expected.0 * 1e-6,
            "{d} vs {}",
            expected.0
        );
        assert!(millis(&offer["expires_at"]) > millis(&job["created_at"]));
        busy.insert(expected.1.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_and_timeout_go_to_the_next_worker() {
    let s = Server::start(&[("DISPATCHD_DISPATCH_OFFER_TIMEOUT_S", "1")]).await;
    let (_, r) = s.user("resident", &[]).await;
    let mut near = s.worker_online(&["plumbing"], 52.5200, 13.4000).await;
    let mut mid = s.worker_online(&["plumbing"], 52.5300, 13.4000).await;
    let mut far = s.worker_online(&["plumbing"], 52.5600, 13.4000).await;
    let mut rws = Ws::connect(&s, &r, false).await;
    let job = s.create_job(&r, 52.5195, 13.4000, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["worker_id"], json!(near.id));
    near.ws.next_of("offer").await;

    // Decline over HTTP → the next nearest.
    let (st, v) = s
        .post(&format!("/v1/jobs/{id}/decline"), &near.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let revoked = near.ws.next_of("offer_revoked").await;
    assert_eq!(revoked["reason"], "declined");
    let offer = mid.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], json!(id));
    // The resident follows along without subscribing.
    rws.next_where("job", |m| m["job"]["worker_id"] == json!(mid.id))
        .await;

    // No answer within offer_timeout_s → expired → the next one.
    let revoked = mid.ws.next_of("offer_revoked").await;
    assert_eq!(revoked["reason"], "expired");
    let offer = far.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], json!(id));
    let job = s.job(&id, &r).await;
    assert_eq!(job["attempts"], 3);
    assert_eq!(job["worker_id"], json!(far.id));

    // The expired worker accepting late → 409 offer_expired; the decliner → offer_expired too? No: declined.
    let (st, v) = s
        .post(&format!("/v1/jobs/{id}/accept"), &mid.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "offer_expired");
    // Expired and declined workers are not offered it again: with far also
    // lapsing, the job waits.
    far.ws.next_of("offer_revoked").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = s.job(&id, &r).await;
    assert_eq!(job["status"], "searching", "{job}");
    assert!(near
        .ws
        .recv_within(Duration::from_millis(500))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_job_is_offered_when_a_worker_comes_online() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let job = s.create_job(&r, 40.0, -3.7, "locks").await;
    assert_eq!(job["status"], "searching");
    assert_eq!(job["worker_id"], Value::Null);
    // A worker with a socket but no position, then available: still waiting.
    let (wid, wt) = s.user("worker", &["locks"]).await;
    let mut ws = Ws::connect(&s, &wt, false).await;
    ws.request(json!({"type": "availability", "available": true}))
        .await;
    assert_eq!(
        s.job(job["id"].as_str().unwrap(), &r).await["status"],
        "searching"
    );
    // The position makes it matchable: offered at once.
    ws.request(json!({"type": "location", "lat": 40.01, "lng": -3.7}))
        .await;
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["job_id"], job["id"]);
    assert_eq!(
        s.job(job["id"].as_str().unwrap(), &r).await["worker_id"],
        json!(wid)
    );

    // A worker who closes its socket is no longer matchable.
    ws.request(json!({"type": "accept", "job_id": job["id"]}))
        .await;
    ws.request(json!({"type": "arrive", "job_id": job["id"]}))
        .await;
    ws.request(json!({"type": "complete", "job_id": job["id"]}))
        .await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = s.create_job(&r, 40.0, -3.7, "locks").await;
    assert_eq!(next["status"], "searching", "{next}");
    // Reconnecting (position still fresh, still available) → offered.
    let mut ws = Ws::connect(&s, &wt, false).await;
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["job_id"], next["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_then_retry() {
    let s = Server::start(&[("DISPATCHD_DISPATCH_SEARCH_TIMEOUT_S", "1")]).await;
    let (_, r) = s.user("resident", &[]).await;
    let ops = s.ops();
    let mut rws = Ws::connect(&s, &r, false).await;
    let job = s.create_job(&r, 51.5, -0.12, "glazing").await;
    let id = job["id"].as_str().unwrap().to_string();
    let m = rws
        .next_where("job", |m| m["job"]["status"] == "unmatched")
        .await;
    assert_eq!(m["job"]["id"], json!(id));
    let (st, l) = s.get("/v1/ops/unmatched", &ops).await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&Value> = l["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| &j["id"])
        .collect();
    assert_eq!(ids, vec![&json!(id)]);
    assert!(s.metric("dispatchd_jobs_unmatched_total").await >= 1.0);
    // Retry → searching with a fresh timeout; a worker appears → offered.
    let (st, v) = s
        .post(&format!("/v1/ops/unmatched/{id}/retry"), &ops, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "searching");
    let mut w = s.worker_online(&["glazing"], 51.5, -0.121).await;
    w.ws.next_of("offer").await;
    w.ws.request(json!({"type": "accept", "job_id": id})).await;
    assert_eq!(s.job(&id, &r).await["status"], "accepted");
    // Retry of a job that is not a dead letter → 409.
    let (st, v) = s
        .post(&format!("/v1/ops/unmatched/{id}/retry"), &ops, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    Server::assert_error(&v, "invalid_transition");
    let (_, l) = s.get("/v1/ops/unmatched", &ops).await;
    assert!(l["jobs"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_at_every_stage() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let ops = s.ops();
    let cancel = |id: Value, token: String| {
        let s = &s;
        async move {
            s.post(
                &format!("/v1/jobs/{}/cancel", id.as_str().unwrap()),
                &token,
                json!({"reason": "changed my mind"}),
            )
            .await
        }
    };
    // Searching.
    let j = s.create_job(&r, 10.0, 10.0, "roofing").await;
    let (st, v) = cancel(j["id"].clone(), r.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["cancel_reason"], "changed my mind");
    assert!(v["cancelled_at"].is_string());
    // Cancelling again, or a completed job → 409.
    let (st, v) = cancel(j["id"].clone(), r.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT);
    Server::assert_error(&v, "invalid_transition");

    let mut w = s.worker_online(&["roofing"], 10.0, 10.001).await;
    // Offered: the worker is told the offer is revoked.
    let j = s.create_job(&r, 10.0, 10.0, "roofing").await;
    w.ws.next_of("offer").await;
    let (st, _) = cancel(j["id"].clone(), r.clone()).await;
    assert_eq!(st, StatusCode::OK);
    let m = w.ws.next_of("offer_revoked").await;
    assert_eq!(
        (m["job_id"].clone(), m["reason"].clone()),
        (j["id"].clone(), json!("cancelled"))
    );
    // Accepted (by ops): the worker gets the cancelled job and is free again.
    let j = s.create_job(&r, 10.0, 10.0, "roofing").await;
    w.ws.next_of("offer").await;
    w.ws.request(json!({"type": "accept", "job_id": j["id"]}))
        .await;
    let (st, _) = cancel(j["id"].clone(), ops.clone()).await;
    assert_eq!(st, StatusCode::OK);
    let m =
        w.ws.next_where("job", |m| m["job"]["status"] == "cancelled")
            .await;
    assert_eq!(m["job"]["id"], j["id"]);
    // Arrived.
    let j = s.create_job(&r, 10.0, 10.0, "roofing").await;
    assert_eq!(j["status"], "offered", "worker was released");
    w.ws.next_of("offer").await;
    w.ws.request(json!({"type": "accept", "job_id": j["id"]}))
        .await;
    w.ws.request(json!({"type": "arrive", "job_id": j["id"]}))
        .await;
    let (st, v) = cancel(j["id"].clone(), r.clone()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["worker_id"], json!(w.id));
    w.ws.next_where("job", |m| m["job"]["status"] == "cancelled")
        .await;
    // Completed → 409.
    let j = s.create_job(&r, 10.0, 10.0, "roofing").await;
    w.ws.next_of("offer").await;
    for step in ["accept", "arrive", "complete"] {
        w.ws.request(json!({"type": step, "job_id": j["id"]})).await;
    }
    let (st, v) = cancel(j["id"].clone(), r.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT);
    Server::assert_error(&v, "invalid_transition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_billing_and_pushes() {
    let s = Server::start(&[
        ("DISPATCHD_BILLING_INCREMENT_S", "1"),
        ("DISPATCHD_BILLING_CENTS_PER_INCREMENT", "250"),
    ])
    .await;
    let (rid, r) = s.user("resident", &[]).await;
    let ops = s.ops();
    let mut rws = Ws::connect(&s, &r, false).await;
    let mut ows = Ws::connect(&s, &ops, true).await; // ops follows in MessagePack
    let mut w = s.worker_online(&["hvac"], 35.68, 139.76).await;
    let job = s.create_job(&r, 35.681, 139.761, "hvac").await;
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["resident_id"], json!(rid));
    let first = ows
        .request(json!({"type": "subscribe", "job_id": id}))
        .await;
    assert_eq!(first["type"], "ack");
    w.ws.next_of("offer").await;

    // Steps out of order → 409 invalid_transition, over WS and HTTP.
    let e =
        w.ws.request_err(json!({"type": "arrive", "job_id": id}))
            .await;
    assert_eq!(e["code"], "invalid_transition");
    let (st, _) = s
        .post(&format!("/v1/jobs/{id}/complete"), &w.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    let (st, v) = s
        .post(&format!("/v1/jobs/{id}/accept"), &w.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "accepted");
    let (st, v) = s
        .post(&format!("/v1/jobs/{id}/arrive"), &w.token, json!({}))
        .await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::OK, json!("arrived"))
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (st, done) = s
        .post(&format!("/v1/jobs/{id}/complete"), &w.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    let secs = (millis(&done["completed_at"]) - millis(&done["arrived_at"])) as f64 / 1000.0;
    let increments = (secs.ceil() as i64).max(1);
    assert!(increments >= 2);
    assert_eq!(done["fare_cents"], json!(increments * 250), "{done}");
    for field in [
        "created_at",
        "offered_at",
        "accepted_at",
        "arrived_at",
        "completed_at",
    ] {
        assert!(done[field].is_string(), "{field}");
    }
    assert_eq!(done["cancelled_at"], Value::Null);

    // The resident saw every step, in order; so did the ops subscriber.
    for ws in [&mut rws, &mut ows] {
        let mut seen = Vec::new();
        while seen.last() != Some(&json!("completed")) {
            let m = ws.next_of("job").await;
            assert_eq!(m["job"]["id"], json!(id));
            if seen.last() != Some(&m["job"]["status"]) {
                seen.push(m["job"]["status"].clone());
            }
        }
        let tail: Vec<Value> = seen.iter().rev().take(3).rev().cloned().collect();
        assert_eq!(
            tail,
            vec![json!("accepted"), json!("arrived"), json!("completed")]
        );
    }
    // The worker is matchable again.
    let next = s.create_job(&r, 35.681, 139.761, "hvac").await;
    assert_eq!(next["worker_id"], json!(w.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ws_message_and_bad_frames() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let (_, r2) = s.user("resident", &[]).await;
    let mut w = s.worker_online(&["paint"], 1.0, 1.0).await;
    let mut rws = Ws::connect(&s, &r, false).await;

    // ping → pong; req_id as string or integer → ack.
    rws.send(json!({"type": "ping"})).await;
    assert_eq!(rws.recv().await, json!({"type": "pong"}));
    rws.send(json!({"type": "ping", "req_id": 41})).await;
    let mut got = vec![rws.recv().await, rws.recv().await];
    got.sort_by_key(|m| m["type"].as_str().unwrap().to_string());
    assert_eq!(
        got,
        vec![
            json!({"type": "ack", "req_id": 41}),
            json!({"type": "pong"})
        ]
    );

    // Errors keep the connection open.
    use tokio_tungstenite::tungstenite::Message;
    for (frame, code) in [
        (Message::Text("{not json".into()), "invalid_input"),
        (
            Message::Text(r#"{"type":"teleport","req_id":"x"}"#.into()),
            "invalid_input",
        ),
        (Message::Text(r#"{"no_type":1}"#.into()), "invalid_input"),
        (Message::Text(r#"[1,2,3]"#.into()), "invalid_input"),
        (Message::Binary(vec![0xc1u8, 0xff].into()), "invalid_input"),
        (
            Message::Text(format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70_000)).into()),
            "payload_too_large",
        ),
    ] {
        rws.send_raw(frame).await;
        let m = rws.next_of("error").await;
        assert_eq!(m["code"], code, "{m}");
        assert!(m["message"].is_string());
    }
    let m = rws.request_err(json!({"type": "teleport"})).await;
    assert_eq!(m["code"], "invalid_input");
    // Worker-only messages from a resident; subscribe from a worker.
    let m = rws
        .request_err(json!({"type": "location", "lat": 1.0, "lng": 1.0}))
        .await;
    assert_eq!(m["code"], "forbidden");
    let m = rws
        .request_err(json!({"type": "accept", "job_id": "j"}))
        .await;
    assert_eq!(m["code"], "forbidden");
    let m =
        w.ws.request_err(json!({"type": "subscribe", "job_id": "j"}))
            .await;
    assert_eq!(m["code"], "forbidden");
    // Bad coordinates, wrong types.
    for bad in [
        json!({"type": "location", "lat": 91.0, "lng": 1.0}),
        json!({"type": "location", "lat": 1.0, "lng": -181.0}),
        json!({"type": "location", "lat": "1", "lng": 1.0}),
        json!({"type": "location", "lat": 1.0}),
        json!({"type": "availability", "available": 1}),
        json!({"type": "accept"}),
    ] {
        let m = w.ws.request_err(bad.clone()).await;
        assert_eq!(m["code"], "invalid_input", "{bad} -> {m}");
    }
    // Not someone else's job: subscribe → not_found.
    let other = s.create_job(&r2, 5.0, 5.0, "paint").await;
    let m = rws
        .request_err(json!({"type": "subscribe", "job_id": other["id"]}))
        .await;
    assert_eq!(m["code"], "not_found");
    let m =
        w.ws.request_err(json!({"type": "decline", "job_id": "job_nope"}))
            .await;
    assert_eq!(m["code"], "not_found");
    // Subscribe / unsubscribe to one's own job.
    let mine = s.create_job(&r, 50.0, 50.0, "paint").await;
    rws.request(json!({"type": "subscribe", "job_id": mine["id"]}))
        .await;
    rws.request(json!({"type": "unsubscribe", "job_id": mine["id"]}))
        .await;
    // Availability and location over WS, and the HTTP fallbacks.
    w.ws.request(json!({"type": "availability", "available": false}))
        .await;
    let (st, v) = s
        .put(
            "/v1/workers/me/availability",
            &w.token,
            json!({"available": true}),
        )
        .await;
    assert_eq!((st, v), (StatusCode::OK, json!({"available": true})));
    let (st, _) = s
        .put(
            "/v1/workers/me/location",
            &w.token,
            json!({"lat": 5.0001, "lng": 5.0}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // … which made the worker matchable for r2's waiting job.
    let offer = w.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], other["id"]);
    // The connection is still fine after all that.
    rws.send(json!({"type": "ping"})).await;
    rws.next_of("pong").await;
    // Ops see the worker nearby.
    let (st, v) = s
        .get(
            "/v1/workers/nearby?lat=5&lng=5&radius_m=1000&limit=5",
            &s.ops(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let first = &v["workers"][0];
    assert_eq!(first["id"], json!(w.id));
    assert_eq!(first["skills"], json!(["paint"]));
    assert!(first["distance_m"].as_f64().unwrap() < 20.0);
    assert_eq!(first["available"], true);
    assert!(first["lat"].is_number() && first["lng"].is_number());
    assert!(
        s.metric("dispatchd_ws_messages_in_total{type=\"invalid\"}")
            .await
            >= 5.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_worker_and_header_auth() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let (_, wt) = s.user("worker", &["gas"]).await;
    // Header auth instead of ?token=, MessagePack frames.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/v1/ws?format=msgpack", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {wt}").parse().unwrap());
    let (inner, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws::from_stream(inner, true);
    ws.request(json!({"type": "availability", "available": true}))
        .await;
    ws.request(json!({"type": "location", "lat": 59.33, "lng": 18.06}))
        .await;
    let job = s.create_job(&r, 59.331, 18.061, "gas").await;
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["job_id"], job["id"]);
    ws.request(json!({"type": "accept", "job_id": job["id"]}))
        .await;
    let m = ws.next_of("job").await;
    assert_eq!(m["job"]["status"], "accepted");
    ws.send(json!({"type": "ping"})).await;
    ws.next_of("pong").await;

    // Missing or bad tokens never upgrade.
    let bad = format!("ws://{}/v1/ws?token=nope", s.addr);
    let err = tokio_tungstenite::connect_async(bad).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let none = format!("ws://{}/v1/ws", s.addr);
    assert!(tokio_tungstenite::connect_async(none).await.is_err());
    let fmt = format!("ws://{}/v1/ws?token={wt}&format=xml", s.addr);
    let err = tokio_tungstenite::connect_async(fmt).await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_fewer_workers_never_double_booked() {
    let s = Server::start(&[("DISPATCHD_DISPATCH_OFFER_TIMEOUT_S", "2")]).await;
    const WORKERS: usize = 8;
    const JOBS: usize = 40;
    let mut workers = Vec::new();
    for i in 0..WORKERS {
        workers.push(
            s.worker_online(&["cleaning"], 48.0 + i as f64 * 0.001, 11.0)
                .await,
        );
    }
    // Each worker serves its offers; half of them decline their third.
    let mut tasks = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let decline = (i % 2 == 0).then_some(3);
        tasks.push(tokio::spawn(common::serve_offers(w.ws, i, decline)));
    }
    // Residents create all jobs at once.
    let mut creators = Vec::new();
    for _ in 0..4 {
        let (_, r) = s.user("resident", &[]).await;
        let srv_base = s.base.clone();
        let http = s.http.clone();
        creators.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut pending = Vec::new();
            for k in 0..JOBS / 4 {
                let req = http
                    .post(format!("{srv_base}/v1/jobs"))
                    .bearer_auth(&r)
                    .json(
                        &json!({"lat": 48.0 + k as f64 * 0.0003, "lng": 11.0, "skill": "cleaning"}),
                    );
                pending.push(tokio::spawn(async move {
                    let resp = req.send().await.unwrap();
                    assert_eq!(resp.status(), StatusCode::CREATED);
                    resp.json::<Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }));
            }
            for p in pending {
                ids.push(p.await.unwrap());
            }
            (r, ids)
        }));
    }
    let mut all_ids = Vec::new();
    let mut owner = HashMap::new();
    for c in creators {
        let (r, ids) = c.await.unwrap();
        for id in ids {
            owner.insert(id.clone(), r.clone());
            all_ids.push(id);
        }
    }
    let mut completed: Vec<String> = Vec::new();
    for t in tasks {
        completed.extend(t.await.unwrap());
    }
    let unique: HashSet<&String> = completed.iter().collect();
    assert_eq!(unique.len(), completed.len(), "a job completed twice");
    assert_eq!(
        completed.len(),
        JOBS,
        "every job was completed exactly once"
    );
    for id in &all_ids {
        let j = s.job(id, &owner[id]).await;
        assert_eq!(j["status"], "completed", "{j}");
    }
}
