//! Properties (API.md v1.1) end to end, on the embedded store and
//! (`E2E_BACKEND=redis`) a one-node cluster: who may create, read and list
//! them, jobs placed at one, and their durability across `kill -9`.

mod common;

use common::Server;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_belong_to_residents_and_jobs_can_be_placed_at_them() {
    let mut s = Server::start(&[]).await;
    let ops = s.ops();
    let (rid, r) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;
    let home =
        json!({"name": "Flat 3, Elm Court", "address": "3 Elm St", "lat": 51.5, "lng": -0.12});
    let (st, p) = s.post("/v1/properties", &r, home.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    assert_eq!(
        (p["owner_id"].as_str(), p["name"].as_str()),
        (Some(rid.as_str()), Some("Flat 3, Elm Court"))
    );
    assert!(p["created_at"].is_string());
    // Reads: the owner and ops; others do not learn it exists.
    assert_eq!(
        s.get(&format!("/v1/properties/{pid}"), &r).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/v1/properties/{pid}"), &ops).await.0,
        StatusCode::OK
    );
    let (st, v) = s.get(&format!("/v1/properties/{pid}"), &other).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    Server::assert_error(&v, "not_found");
    let (_, mine) = s.get("/v1/properties", &r).await;
    assert_eq!(mine["properties"].as_array().unwrap().len(), 1);
    let (_, theirs) = s.get("/v1/properties", &other).await;
    assert!(theirs["properties"].as_array().unwrap().is_empty());
    // Ops create for a resident, naming one.
    let (st, v) = s.post("/v1/properties", &ops, home.clone()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let mut for_other = home.clone();
    for_other["owner_id"] = json!("no-such-user");
    assert_eq!(
        s.post("/v1/properties", &ops, for_other.clone()).await.0,
        StatusCode::BAD_REQUEST
    );
    let mut w = s.worker_online(&["plumbing"], 51.5005, -0.12).await;
    for_other["owner_id"] = json!(w.id);
    let (st, v) = s.post("/v1/properties", &ops, for_other.clone()).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a worker owns no property: {v}"
    );
    let oid = s.user("resident", &[]).await.0;
    for_other["owner_id"] = json!(oid);
    let (st, v) = s.post("/v1/properties", &ops, for_other).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, all) = s.get("/v1/properties", &ops).await;
    assert_eq!(all["properties"].as_array().unwrap().len(), 2);
    // Workers neither create nor list.
    assert_eq!(
        s.post("/v1/properties", &w.token, home.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/properties", &w.token).await.0,
        StatusCode::FORBIDDEN
    );
    // Bad input names the field.
    for (body, field) in [
        (json!({"name": "", "lat": 1.0, "lng": 1.0}), "name"),
        (json!({"name": "x", "lat": 100.0, "lng": 1.0}), "lat"),
        (json!({"name": "x", "lat": 1.0}), "lng"),
    ] {
        let (st, v) = s.post("/v1/properties", &r, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }

    // A worker may not see the property until it holds a job there.
    assert_eq!(
        s.get(&format!("/v1/properties/{pid}"), &w.token).await.0,
        StatusCode::NOT_FOUND
    );
    let (st, job) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"property_id": pid, "skill": "plumbing"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{job}");
    assert_eq!(
        (job["lat"].as_f64(), job["lng"].as_f64()),
        (Some(51.5), Some(-0.12))
    );
    assert_eq!(job["property_id"], pid.as_str());
    w.ws.next_of("offer").await;
    assert_eq!(
        s.get(&format!("/v1/properties/{pid}"), &w.token).await.0,
        StatusCode::OK
    );
    // Someone else's property, or both kinds of place: 400 naming the field.
    let (st, v) = s
        .post(
            "/v1/jobs",
            &other,
            json!({"property_id": pid, "skill": "plumbing"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("property_id"));
    let (st, _) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"property_id": pid, "lat": 1.0, "lng": 1.0, "skill": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Ops place a job at a resident's property: the job is the owner's.
    let (st, by_ops) = s
        .post(
            "/v1/jobs",
            &ops,
            json!({"property_id": pid, "skill": "roofing"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{by_ops}");
    assert_eq!(by_ops["resident_id"], rid.as_str());
    let (st, _) = s
        .post(
            "/v1/jobs",
            &ops,
            json!({"lat": 1.0, "lng": 1.0, "skill": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "ops create only at a property");
    let seen = s.job(by_ops["id"].as_str().unwrap(), &r).await;
    assert_eq!(seen["property_id"], pid.as_str());

    // Durable: a kill -9 keeps properties and the jobs' places.
    s.restart().await;
    let (st, p2) = s.get(&format!("/v1/properties/{pid}"), &r).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(p2, p);
    assert_eq!(
        s.job(job["id"].as_str().unwrap(), &r).await["property_id"],
        pid.as_str()
    );
}
