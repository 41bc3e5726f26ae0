//! Triage and urgency-first dispatch (API.md v1.1, "Intake") end to end,
//! on the embedded store and (`E2E_BACKEND=redis`) a one-node cluster: a
//! job without a skill is triaged and dispatched, an uncertain one is 422
//! with alternatives and creates nothing, an emergency is offered before
//! an older normal job, and examples ops post count at once and survive
//! `kill -9`.

mod common;

use std::time::Duration;

use common::Server;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_explains_and_a_job_without_a_skill_is_dispatched() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let (st, v) = s
        .post(
            "/v1/triage",
            &r,
            json!({"description": "the kitchen tap is dripping all night"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["skill"], "plumbing", "{v}");
    assert!(v["confidence"].as_f64().unwrap() > 0.5, "{v}");
    assert!(
        v["matched"].as_array().unwrap().iter().any(|m| m == "tap"),
        "{v}"
    );
    assert!(
        v["estimate_cents"]["low"].as_i64().unwrap()
            <= v["estimate_cents"]["high"].as_i64().unwrap()
    );
    assert_eq!(v["alternatives"].as_array().unwrap().len(), 3);
    let (_, v) = s.get("/v1/triage/skills", &r).await;
    assert_eq!(v["skills"].as_array().unwrap().len(), 12);
    let w = s.user("worker", &["electrical"]).await.1;
    assert_eq!(
        s.post("/v1/triage", &w, json!({"description": "x"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // No skill: triage decides; the emergency rule fires.
    let mut sparky = s.worker_online(&["electrical"], 51.5005, -0.12).await;
    let (st, j) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 51.5, "lng": -0.12, "description": "sparks and a burning smell from the socket in the kitchen"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    assert_eq!(
        (j["skill"].as_str(), j["urgency"].as_str()),
        (Some("electrical"), Some("emergency")),
        "{j}"
    );
    assert!(
        j["triage"]["matched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "sparks"),
        "{j}"
    );
    assert!(j["estimate_cents"]["high"].is_i64(), "{j}");
    let offer = sparky.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], j["id"]);

    // Too vague: 422 with the skills it weighed, and nothing created.
    let (_, before) = s.get("/v1/jobs", &r).await;
    let (st, v) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 51.5, "lng": -0.12, "description": "something is wrong"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    Server::assert_error(&v, "triage_uncertain");
    let alts = v["error"]["alternatives"].as_array().unwrap();
    assert!(
        alts.len() >= 2 && alts[0]["skill"].is_string() && alts[0]["confidence"].is_f64(),
        "{v}"
    );
    let (_, after) = s.get("/v1/jobs", &r).await;
    assert_eq!(
        before["jobs"].as_array().unwrap().len(),
        after["jobs"].as_array().unwrap().len()
    );
    let (st, v) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing", "urgency": "soon"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_is_offered_before_an_older_normal_job() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let (_, wt) = s.user("worker", &["plumbing"]).await;
    let mut ws = common::Ws::connect(&s, &wt, false).await;
    ws.request(json!({"type": "location", "lat": 51.5005, "lng": -0.12}))
        .await;
    // The worker is not available yet: both wait.
    let (_, normal) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing", "description": "dripping tap"}),
        )
        .await;
    assert_eq!(normal["urgency"], "normal", "{normal}");
    let (_, urgent) = s
        .post("/v1/jobs", &r, json!({"lat": 51.5, "lng": -0.12, "description": "burst pipe, water pouring through the ceiling"}))
        .await;
    assert_eq!(urgent["urgency"], "emergency", "{urgent}");
    ws.request(json!({"type": "availability", "available": true}))
        .await;
    let offer = ws.next_of("offer").await;
    assert_eq!(offer["job_id"], urgent["id"], "the emergency first");
    assert!(ws
        .recv_within(Duration::from_millis(200))
        .await
        .is_none_or(|m| m["type"] != "offer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_teach_triage_at_once_and_survive_kill_9() {
    let mut s = Server::start(&[]).await;
    let ops = s.ops();
    let (_, r) = s.user("resident", &[]).await;
    let text = json!({"description": "the zorbulator is zapping again"});
    let (_, before) = s.post("/v1/triage", &r, text.clone()).await;
    for _ in 0..3 {
        let (st, v) = s
            .post(
                "/v1/ops/triage/examples",
                &ops,
                json!({"description": "zorbulator zapping", "skill": "appliance", "urgency": "high"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (_, after) = s.post("/v1/triage", &r, text.clone()).await;
    assert_eq!(after["skill"], "appliance", "{before} → {after}");
    for (body, field) in [
        (
            json!({"description": "x", "skill": "astrology", "urgency": "low"}),
            "skill",
        ),
        (
            json!({"description": "x", "skill": "appliance", "urgency": "soon"}),
            "urgency",
        ),
        (
            json!({"description": "", "skill": "appliance", "urgency": "low"}),
            "description",
        ),
    ] {
        let (st, v) = s.post("/v1/ops/triage/examples", &ops, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    assert_eq!(
        s.post(
            "/v1/ops/triage/examples",
            &r,
            json!({"description": "x", "skill": "appliance", "urgency": "low"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    s.restart().await;
    let (_, again) = s.post("/v1/triage", &r, text).await;
    assert_eq!(again["skill"], "appliance", "examples are durable: {again}");
    assert_eq!(again["confidence"], after["confidence"]);
}
