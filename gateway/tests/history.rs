//! History leaves memory and every read still finds it: with
//! `keep_finished_s = 0` finished jobs go to the archive within a second;
//! reads, listings, refusals, idempotent retries and ops' retry of a dead
//! letter answer exactly as for a live job — also after a restart. Runs on
//! both backends (`E2E_BACKEND`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn wait_archived(s: &Server, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = s
            .metric("dispatchd_job_transitions_total{event=\"job_archived\"}")
            .await;
        if got >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {got} of {n} jobs archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /v1/jobs` with the same `Idempotency-Key` every time.
async fn keyed_create(s: &Server, token: &str) -> (StatusCode, serde_json::Value) {
    let resp = s
        .http
        .post(format!("{}/v1/jobs", s.base))
        .bearer_auth(token)
        .header("idempotency-key", "history-1")
        .json(&json!({"lat": 52.5, "lng": 13.4, "skill": "roofing"}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_jobs_answer_as_before() {
    let mut s = Server::start(&[
        ("DISPATCHD_STORAGE_KEEP_FINISHED_S", "0"),
        ("DISPATCHD_DISPATCH_SEARCH_TIMEOUT_S", "1"),
    ])
    .await;
    let (_, r) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;
    let ops = s.ops();
    let mut w = s.worker_online(&["plumbing"], 52.52, 13.405).await;

    // Completed, cancelled, unmatched.
    let done = s.create_job(&r, 52.521, 13.405, "plumbing").await;
    let done_id = done["id"].as_str().unwrap().to_string();
    for step in ["accept", "arrive", "complete"] {
        w.ws.request(json!({"type": step, "job_id": done_id})).await;
    }
    let cancelled = s.create_job(&r, 52.5, 13.4, "roofing").await;
    let cancelled_id = cancelled["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .post(&format!("/v1/jobs/{cancelled_id}/cancel"), &r, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let unmatched = s.create_job(&r, 52.5, 13.4, "roofing").await;
    let unmatched_id = unmatched["id"].as_str().unwrap().to_string();
    // And one with an idempotency key, cancelled.
    let (st, keyed) = keyed_create(&s, &r).await;
    assert_eq!(st, StatusCode::CREATED);
    let keyed_id = keyed["id"].as_str().unwrap().to_string();
    s.post(&format!("/v1/jobs/{keyed_id}/cancel"), &r, json!({}))
        .await;

    wait_archived(&s, 4.0).await;
    for restarted in [false, true] {
        if restarted {
            s.restart().await;
        }
        let j = s.job(&done_id, &r).await;
        assert_eq!(j["status"], "completed", "{j}");
        assert_eq!(j["fare_cents"], 1000);
        assert_eq!(s.job(&done_id, &w.token).await["status"], "completed");
        assert_eq!(s.job(&cancelled_id, &r).await["status"], "cancelled");
        assert_eq!(s.job(&unmatched_id, &ops).await["status"], "unmatched");
        // Someone else still gets 404.
        let (st, v) = s.get(&format!("/v1/jobs/{done_id}"), &other).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        // Listings: newest first, archived jobs included.
        let (_, l) = s.get("/v1/jobs?limit=10", &r).await;
        let ids: Vec<&str> = l["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [&keyed_id, &unmatched_id, &cancelled_id, &done_id],
            "{l}"
        );
        let (_, l) = s.get("/v1/jobs?status=completed", &w.token).await;
        assert_eq!(l["jobs"][0]["id"], json!(done_id));
        let (_, dead) = s.get("/v1/ops/unmatched", &ops).await;
        assert!(dead["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == json!(unmatched_id)));
        // Steps on a finished job are out of order, archived or not.
        let (st, v) = s
            .post(&format!("/v1/jobs/{done_id}/cancel"), &r, json!({}))
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        Server::assert_error(&v, "invalid_transition");
        let (st, v) = s
            .post(&format!("/v1/jobs/{done_id}/complete"), &w.token, json!({}))
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        // An idempotent retry finds the archived job.
        let (st, again) = keyed_create(&s, &r).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(again["id"], json!(keyed_id));
        assert_eq!(again["status"], "cancelled");
    }
    // Ops retry an archived dead letter: it comes back to the search.
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/v1/ops/unmatched/{unmatched_id}/retry"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "searching");
    assert_eq!(v["id"], json!(unmatched_id));
    assert_eq!(s.job(&unmatched_id, &r).await["status"], "searching");
}
