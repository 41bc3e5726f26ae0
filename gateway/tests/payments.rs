//! Ratings, worker analytics and payments (API.md v1.1) end to end, on the
//! embedded store and (`E2E_BACKEND=redis`) a one-node cluster: who may
//! rate and when, once; payments from ops and from the provider with a
//! valid, a wrong and an expired signature; the same `provider_ref`
//! updating; `paid_cents`; `kill -9` keeping ratings and payments.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::Server;
use gateway::notify::sign::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A provider call: the body signed with `secret` at `ts`.
async fn provider(
    s: &Server,
    secret: &Secret,
    ts: i64,
    body: &Value,
    sig: Option<String>,
) -> (StatusCode, Value) {
    let raw = serde_json::to_vec(body).unwrap();
    // Each call its own webhook-id (the same id again is a replay), except
    // where the caller signed it already (as msg_<ts>).
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = match sig {
        Some(_) => format!("msg_{ts}"),
        None => format!(
            "msg_{ts}_{}",
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
    };
    let sig = sig.unwrap_or_else(|| secret.sign(&id, ts, &raw));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/payments", s.base))
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(raw)
        .send()
        .await
        .unwrap();
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_payments_and_worker_analytics() {
    let secret = Secret::generate();
    let encoded = secret.encode();
    let mut s = Server::start(&[("DISPATCHD_PAYMENTS_WEBHOOK_SECRET", encoded.as_str())]).await;
    let ops = s.ops();
    let (_, r) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;
    let (id, w) = s.completed_job(&r).await;

    // Ratings: its resident, once completed, once.
    let path = format!("/v1/jobs/{id}/rating");
    assert_eq!(
        s.post(&path, &other, json!({"stars": 5})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(&path, &w.token, json!({"stars": 5})).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, v) = s.post(&path, &r, json!({"stars": 6})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .post(&path, &r, json!({"stars": 5, "comment": "quick and tidy"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["rating"]["stars"].as_i64(),
            v["rating"]["comment"].as_str()
        ),
        (Some(5), Some("quick and tidy"))
    );
    let (st, v) = s.post(&path, &r, json!({"stars": 1})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "already_rated");
    let open = s.create_job(&r, 10.0, 10.0, "nobody").await;
    let (st, v) = s
        .post(
            &format!("/v1/jobs/{}/rating", open["id"].as_str().unwrap()),
            &r,
            json!({"stars": 3}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "not completed: {v}");

    // Worker analytics.
    let (st, v) = s.get("/v1/ops/analytics/workers", &ops).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let me = v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == w.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (
            me["offered"].as_i64(),
            me["accepted"].as_i64(),
            me["completed"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{me}"
    );
    assert_eq!(me["mean_stars"], 5.0);
    assert_eq!(me["acceptance_rate"], 1.0);
    assert!(me["revenue_cents"].as_i64().unwrap() > 0);

    // Payments from ops, then from the provider.
    let pay =
        json!({"job_id": id, "amount_cents": 1000, "status": "pending", "provider_ref": "pi_1"});
    let (st, v) = s.post("/v1/payments", &ops, pay.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let pid = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.post("/v1/payments", &r, pay.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let succeeded =
        json!({"job_id": id, "amount_cents": 1000, "status": "succeeded", "provider_ref": "pi_1"});
    let (st, v) = provider(&s, &secret, now_s(), &succeeded, None).await;
    assert_eq!(st, StatusCode::OK, "the same provider_ref updates: {v}");
    assert_eq!(
        (v["id"].as_str(), v["status"].as_str()),
        (Some(pid.as_str()), Some("succeeded"))
    );
    // A wrong and an expired signature change nothing.
    let refund =
        json!({"job_id": id, "amount_cents": 1000, "status": "refunded", "provider_ref": "pi_1"});
    let wrong = Secret::generate();
    let (st, _) = provider(
        &s,
        &wrong,
        now_s(),
        &refund,
        Some(wrong.sign("msg_x", now_s(), b"{}")),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let old = now_s() - 600;
    let (st, _) = provider(&s, &secret, old, &refund, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "older than 5 minutes");
    // Several signatures (a rotation): any valid one counts.
    let second =
        json!({"job_id": id, "amount_cents": 500, "status": "succeeded", "provider_ref": "pi_2"});
    let ts = now_s();
    let raw = serde_json::to_vec(&second).unwrap();
    let both = format!(
        "{} {}",
        wrong.sign(&format!("msg_{ts}"), ts, &raw),
        secret.sign(&format!("msg_{ts}"), ts, &raw)
    );
    let (st, v) = provider(&s, &secret, ts, &second, Some(both)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let job = s.job(&id, &r).await;
    assert_eq!(job["paid_cents"], 1500, "{job}");
    let (st, v) = s.get(&format!("/v1/jobs/{id}/payments"), &r).await;
    assert_eq!(
        (st, v["payments"].as_array().unwrap().len()),
        (StatusCode::OK, 2),
        "{v}"
    );
    assert_eq!(
        s.get(&format!("/v1/jobs/{id}/payments"), &other).await.0,
        StatusCode::NOT_FOUND
    );
    let (st, v) = s
        .post("/v1/payments", &ops, json!({"job_id": "job_nope", "amount_cents": 1, "status": "pending", "provider_ref": "x"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .post(
            "/v1/payments",
            &ops,
            json!({"job_id": id, "amount_cents": 1, "status": "paid", "provider_ref": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    // A refund no longer counts; all of it survives kill -9.
    let (st, _) = provider(&s, &secret, now_s(), &refund, None).await;
    assert_eq!(st, StatusCode::OK);
    s.restart().await;
    let job = s.job(&id, &r).await;
    assert_eq!(job["paid_cents"], 500, "{job}");
    assert_eq!(job["rating"]["stars"], 5);
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/v1/jobs/{id}/payments"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(v["payments"].as_array().unwrap().len(), 2);
}
