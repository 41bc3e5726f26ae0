//! Notifications beyond the socket, end to end (API.md v1.1), on the
//! embedded store and (`E2E_BACKEND=redis`) a one-node cluster: a job's
//! lifecycle arrives as signed webhooks in the job's order, as e-mail over
//! SMTP and as SMS through the provider; a failing receiver sees the same
//! `webhook-id` again; 410 disables the endpoint; private targets are
//! refused; undelivered notifications survive `kill -9`.

mod common;

use std::time::Duration;

use common::sinks::{Receiver, SmtpSink};
use common::{Server, Ws};
use gateway::notify::sign::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

async fn server(smtp: &SmtpSink, sms: &Receiver, extra: &[(&str, &str)]) -> Server {
    let sms_url = format!("{}/sms", sms.url);
    let mut env = vec![
        ("DISPATCHD_NOTIFY_ALLOW_PRIVATE_TARGETS", "true"),
        ("DISPATCHD_NOTIFY_SMTP_URL", smtp.url.as_str()),
        ("DISPATCHD_NOTIFY_SMS_URL", sms_url.as_str()),
        ("DISPATCHD_NOTIFY_RETRY_DELAYS_S", "0.2,0.2,0.2"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env).await
}

async fn webhook(s: &Server, url: &str, events: Value) -> (String, String) {
    let (st, v) = s
        .post(
            "/v1/ops/webhooks",
            &s.ops(),
            json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"), "{v}");
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

async fn deliveries(s: &Server, query: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/v1/ops/deliveries{query}"), &s.ops()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["deliveries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_lifecycle_arrives_signed_in_order_by_webhook_email_and_sms() {
    let (hooks, smtp) = (Receiver::start().await, SmtpSink::start().await);
    let s = server(&smtp, &hooks, &[]).await;
    let (_, secret) = webhook(&s, &format!("{}/hook", hooks.url), json!(["*"])).await;
    let (rid, r) = s.user("resident", &[]).await;
    let (st, v) = s
        .put(
            "/v1/me/notifications",
            &r,
            json!({"email": "resident@example.com"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["email"], "resident@example.com");
    let mut w = s.worker_online(&["plumbing"], 52.52, 13.405).await;
    let prefs = json!({"sms": "+4917012345678", "events": ["job.offered"]});
    let (st, v) = s.put("/v1/me/notifications", &w.token, prefs.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, got) = s.get("/v1/me/notifications", &w.token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (&got["sms"], &got["events"]),
        (&prefs["sms"], &prefs["events"])
    );

    let job = s.create_job(&r, 52.52, 13.405, "plumbing").await;
    let id = job["id"].as_str().unwrap().to_string();
    w.ws.next_of("offer").await;
    for step in ["accept", "arrive", "complete"] {
        w.ws.request(json!({"type": step, "job_id": id})).await;
    }
    let want = [
        "job.created",
        "job.offered",
        "job.accepted",
        "job.arrived",
        "job.completed",
    ];
    let got = hooks
        .wait_for("/hook", WAIT, |g| g.len() >= want.len())
        .await;
    let secret = Secret::parse(&secret).unwrap();
    let mut ids = Vec::new();
    for (h, name) in got.iter().zip(want) {
        let body = h.json();
        assert_eq!(body["type"], name, "in the job's order: {body}");
        assert_eq!(body["data"]["id"], id.as_str());
        let wid = &h.headers["webhook-id"];
        assert_eq!(wid, body["id"].as_str().unwrap());
        let ts: i64 = h.headers["webhook-timestamp"].parse().unwrap();
        assert!(
            secret.verify(wid, ts, &h.body, &h.headers["webhook-signature"]),
            "signature of {name}"
        );
        ids.push(wid.clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), want.len(), "one webhook-id per notification");
    assert_eq!(got.last().unwrap().json()["data"]["status"], "completed");
    // The resident hears every step by e-mail; the worker only its offer, by SMS.
    let mails = smtp.wait_for(WAIT, |m| m.len() >= want.len()).await;
    assert!(mails
        .iter()
        .all(|m| m.to.iter().any(|t| t.contains("resident@example.com"))));
    assert!(
        mails.iter().any(|m| m.data.contains("completed")),
        "{mails:#?}"
    );
    let sms = hooks.wait_for("/sms", WAIT, |g| !g.is_empty()).await;
    assert_eq!(sms[0].json()["to"], "+4917012345678");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hooks.received("/sms").len(),
        1,
        "only the event the worker chose"
    );
    // The delivery log: all delivered, nothing pending.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let pending = deliveries(&s, "?status=pending").await;
        if pending.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{pending:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = deliveries(&s, "?status=delivered").await;
    assert_eq!(done.len(), 5 + 5 + 1, "{done:?}");
    assert!(done
        .iter()
        .all(|d| d["attempts"] == 1 && d["next_at"].is_null()));
    let _ = rid;
    assert!(s.metric("dispatchd_notifications_total").await >= 11.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_the_webhook_id_410_disables_and_ops_can_retry() {
    let (hooks, smtp) = (Receiver::start().await, SmtpSink::start().await);
    let s = server(&smtp, &hooks, &[]).await;
    let flaky = Receiver::start().await;
    flaky.then(&[500, 503]);
    let gone = Receiver::start().await;
    gone.answer(410);
    let (flaky_id, _) = webhook(&s, &format!("{}/in", flaky.url), json!(["job.created"])).await;
    let (gone_id, _) = webhook(&s, &format!("{}/in", gone.url), json!(["job.created"])).await;
    let (_, r) = s.user("resident", &[]).await;
    s.create_job(&r, 10.0, 10.0, "nobody").await;
    let tries = flaky.wait_for("/in", WAIT, |g| g.len() >= 3).await;
    let first = &tries[0].headers["webhook-id"];
    assert!(
        tries.iter().all(|t| &t.headers["webhook-id"] == first),
        "same id on every retry"
    );
    gone.wait_for("/in", WAIT, |g| !g.is_empty()).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, v) = s.get("/v1/ops/webhooks", &s.ops()).await;
        let hooks = v["webhooks"].as_array().unwrap().clone();
        let disabled =
            hooks.iter().find(|h| h["id"] == gone_id.as_str()).unwrap()["disabled"].clone();
        if disabled == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "410 did not disable: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The log says so.
    let ok = deliveries(&s, &format!("?endpoint={flaky_id}&status=delivered")).await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(
        (ok[0]["attempts"].as_u64(), ok[0]["last_status"].as_u64()),
        (Some(3), Some(200))
    );
    let id = ok[0]["id"].as_str().unwrap();
    let (st, d) = s.get(&format!("/v1/ops/deliveries/{id}"), &s.ops()).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    let codes: Vec<u64> = d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200], "the attempt log: {d}");
    let failed = deliveries(&s, &format!("?endpoint={gone_id}&status=failed")).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["last_status"], 410);
    // A disabled endpoint hears nothing more.
    s.create_job(&r, 10.0, 10.0, "nobody").await;
    flaky.wait_for("/in", WAIT, |g| g.len() >= 4).await;
    assert_eq!(gone.received("/in").len(), 1);
    // Ops retry a failed delivery: sent again (and refused again here).
    let id = failed[0]["id"].as_str().unwrap();
    let (st, v) = s
        .post(
            &format!("/v1/ops/deliveries/{id}/retry"),
            &s.ops(),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "pending");
    let (st, v) = s
        .post("/v1/ops/deliveries/ntf_0.9/retry", &s.ops(), json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    // Deleting an endpoint; deleting it again is 404.
    let path = format!("/v1/ops/webhooks/{flaky_id}");
    let (st, _) = s.call(Method::DELETE, &path, Some(&s.ops()), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s.call(Method::DELETE, &path, Some(&s.ops()), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    Server::assert_error(&v, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_and_bad_input_are_refused() {
    let s = Server::start(&[]).await;
    let ops = s.ops();
    for url in [
        "http://127.0.0.1:9/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ] {
        let (st, v) = s
            .post(
                "/v1/ops/webhooks",
                &ops,
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {v}");
        Server::assert_error(&v, "invalid_input");
    }
    let (st, v) = s
        .post(
            "/v1/ops/webhooks",
            &ops,
            json!({"url": "http://127.0.0.1:9/x", "events": ["job.nope"]}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, r) = s.user("resident", &[]).await;
    for body in [
        json!({"webhook": "http://localhost:9/x"}),
        json!({"email": "not an address"}),
        json!({"sms": "0170 1234"}),
        json!({"events": ["job.created", "nope"]}),
        json!({"email": 5}),
    ] {
        let (st, v) = s.put("/v1/me/notifications", &r, body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        Server::assert_error(&v, "invalid_input");
    }
    let (st, v) = s.get("/v1/me/notifications", &r).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        v["email"].is_null() && v["webhook"].is_null(),
        "nothing kept: {v}"
    );
    // Ops routes are for ops.
    let (st, _) = s.get("/v1/ops/webhooks", &r).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s.get("/v1/ops/deliveries?status=lost", &ops).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_notifications_survive_kill9() {
    let (hooks, smtp) = (Receiver::start().await, SmtpSink::start().await);
    // Long waits between attempts: nothing is retried before the kill.
    let mut s = server(&smtp, &hooks, &[("DISPATCHD_NOTIFY_RETRY_DELAYS_S", "1")]).await;
    hooks.answer(503);
    webhook(
        &s,
        &format!("{}/hook", hooks.url),
        json!(["job.created", "job.cancelled"]),
    )
    .await;
    let (_, r) = s.user("resident", &[]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let j = s.create_job(&r, 10.0, 10.0, "nobody").await;
        let id = j["id"].as_str().unwrap().to_string();
        let (st, _) = s
            .post(&format!("/v1/jobs/{id}/cancel"), &r, json!({}))
            .await;
        assert_eq!(st, StatusCode::OK);
        ids.push(id);
    }
    // Acknowledged: now the process dies before the receiver is back.
    s.kill9();
    hooks.answer(200);
    let before = hooks.received("/hook").len();
    s.restart().await;
    let got = hooks
        .wait_for("/hook", WAIT, |g| {
            let ok: std::collections::HashSet<String> = g[before.min(g.len())..]
                .iter()
                .map(|h| h.json()["id"].as_str().unwrap().to_string())
                .collect();
            ok.len() >= 10
        })
        .await;
    for id in &ids {
        for t in ["job.created", "job.cancelled"] {
            assert!(
                got.iter().any(|h| {
                    let b = h.json();
                    b["type"] == t && b["data"]["id"] == id.as_str()
                }),
                "{t} of {id} never delivered"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_clients_are_unchanged_by_notifications() {
    // A resident following a job gets one `job` message per change, as
    // without listeners (a notification does not split the run).
    let (hooks, smtp) = (Receiver::start().await, SmtpSink::start().await);
    let s = server(&smtp, &hooks, &[]).await;
    webhook(&s, &format!("{}/hook", hooks.url), json!(["*"])).await;
    let _w = s.worker_online(&["hvac"], 1.0, 1.0).await;
    let (_, r) = s.user("resident", &[]).await;
    let mut ws = Ws::connect(&s, &r, false).await;
    s.create_job(&r, 1.0, 1.0, "hvac").await;
    let m = ws.next_of("job").await;
    assert_eq!(
        m["job"]["status"], "offered",
        "created and offered in one message: {m}"
    );
}
