//! API.md v1.2 "Tighter rules", each finding of the outside probe
//! reproduced, on the embedded store and (`E2E_BACKEND=redis`) a one-node
//! cluster: a replayed payment call after a refund, backwards statuses
//! (ops too), a fixed amount and a ref of one job; formula cells in the
//! logs CSV; a PNG polyglot and a truncated PDF; the upload quota; times
//! before 1970; canonical zone names; one calendar event for an overdue
//! schedule and separate `CATEGORIES`; a worker's view of movements and
//! their `consume`; a part with stock; roles before bodies; PATCH fields;
//! `limit` on the list routes; triage examples while jobs are created.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Server;
use gateway::notify::sign::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// A provider call signed with `secret` under `webhook_id`.
async fn provider(
    s: &Server,
    secret: &Secret,
    webhook_id: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let raw = serde_json::to_vec(body).unwrap();
    let ts = now_s();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/payments", s.base))
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", secret.sign(webhook_id, ts, &raw))
        .body(raw)
        .send()
        .await
        .unwrap();
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_payment_call_cannot_undo_a_refund() {
    let secret = Secret::generate();
    let encoded = secret.encode();
    let mut s = Server::start(&[("DISPATCHD_PAYMENTS_WEBHOOK_SECRET", encoded.as_str())]).await;
    let ops = s.ops();
    let (_, r) = s.user("resident", &[]).await;
    let id = s.completed_job(&r).await.0;
    let body = |status: &str, amount: i64| json!({"job_id": id, "amount_cents": amount, "status": status, "provider_ref": "pi_X"});
    let (st, v) = provider(&s, &secret, "msg_1", &body("succeeded", 4200)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = provider(&s, &secret, "msg_2", &body("refunded", 4200)).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("refunded")),
        "{v}"
    );
    // The first call again, same headers within the window: as it is.
    let (st, v) = provider(&s, &secret, "msg_1", &body("succeeded", 4200)).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("refunded")),
        "{v}"
    );
    assert_eq!(s.job(&id, &r).await["paid_cents"], 0);
    // A new id going backwards: 409, for ops too.
    let (st, v) = provider(&s, &secret, "msg_3", &body("succeeded", 4200)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "invalid_transition");
    let (st, v) = s.post("/v1/payments", &ops, body("pending", 4200)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "invalid_transition");
    // The same status again under a new id: nothing changes.
    let (st, v) = provider(&s, &secret, "msg_4", &body("refunded", 4200)).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("refunded")),
        "{v}"
    );
    // The ledger: every accepted call in order with its webhook-id.
    let calls: Vec<&str> = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(calls, ["msg_1", "msg_2"], "{v}");

    // The amount is fixed by the first call; a ref belongs to one job.
    let (st, v) = s
        .post(
            "/v1/payments",
            &ops,
            json!({"job_id": id, "amount_cents": 100, "status": "pending", "provider_ref": "pi_Y"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .post("/v1/payments", &ops, json!({"job_id": id, "amount_cents": 999, "status": "succeeded", "provider_ref": "pi_Y"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "conflict");
    let other = s.completed_job(&r).await.0;
    let (st, v) = s
        .post("/v1/payments", &ops, json!({"job_id": other, "amount_cents": 4200, "status": "succeeded", "provider_ref": "pi_X"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "conflict");

    // All of it after kill -9: the replay is still answered as it is.
    s.restart().await;
    let (st, v) = provider(&s, &secret, "msg_1", &body("succeeded", 4200)).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("refunded")),
        "{v}"
    );
    let (st, v) = s
        .post("/v1/payments", &ops, json!({"job_id": other, "amount_cents": 4200, "status": "succeeded", "provider_ref": "pi_X"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(s.job(&id, &r).await["paid_cents"], 0);
}

async fn text(s: &Server, path: &str, token: &str, accept: &str) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .header("accept", accept)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn property(s: &Server, owner: &str) -> String {
    let (st, v) = s
        .post(
            "/v1/properties",
            &s.ops(),
            json!({"name": "Elm Court 3", "lat": 53.8, "lng": -1.55, "owner_id": owner}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_csv_calendar_times_and_zones() {
    let s = Server::start(&[]).await;
    let ops = s.ops();
    let (rid, r) = s.user("resident", &[]).await;
    let pid = property(&s, &rid).await;
    let day = 86_400_000;
    let now = now_s() * 1000;
    let base = json!({
        "property_id": pid, "title": "Gutter check", "skill": "roofing",
        "every": {"unit": "day", "interval": 1},
    });
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };

    // Times before 1970 (and past 9999): 400 naming the field.
    let (st, v) = s
        .post(
            "/v1/schedules",
            &ops,
            with(json!({"start_at": "1969-12-31T23:59:59Z"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("start_at"),
        "{v}"
    );
    let (st, v) = s.get("/v1/logs?from=1900-01-01T00:00:00Z", &ops).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("from"),
        "{v}"
    );

    // A zone in another case is stored canonical.
    let (st, v) = s
        .post(
            "/v1/schedules",
            &ops,
            with(json!({"start_at": rfc3339(now + 10 * day), "timezone": "europe/berlin"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["timezone"], "Europe/Berlin");
    let upcoming = v["id"].as_str().unwrap().to_string();
    // PATCH: a field it cannot change is 400 naming it; roles first.
    let path = format!("/v1/schedules/{upcoming}");
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(&ops),
            Some(json!({"next_due_at": rfc3339(now)})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("next_due_at"),
        "{v}"
    );
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(&ops),
            Some(json!({"timezone": "AMERICA/NEW_YORK"})),
        )
        .await;
    assert_eq!(
        (st, v["timezone"].as_str()),
        (StatusCode::OK, Some("America/New_York")),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::PATCH,
            &path,
            Some(&r),
            Some(json!({"title": 7, "nonsense": true})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "roles before bodies");

    // An overdue daily schedule (40 days behind) is one calendar event.
    let (st, v) = s
        .post(
            "/v1/schedules",
            &ops,
            with(json!({"start_at": rfc3339(now - 40 * day)})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let overdue = v["id"].as_str().unwrap().to_string();
    let (st, ics) = text(&s, "/v1/schedules.ics", &ops, "text/calendar").await;
    assert_eq!(st, StatusCode::OK);
    let uids = |id: &str| ics.matches(&format!("UID:{id}-")).count();
    assert_eq!(uids(&overdue), 1, "{ics}");
    assert!(
        uids(&upcoming) >= 70,
        "an upcoming daily schedule keeps its 90 days"
    );
    assert!(ics.contains("CATEGORIES:MAINTENANCE\r\n"), "{ics}");
    assert!(!ics.contains("CATEGORIES:MAINTENANCE\\,"), "{ics}");

    // A log whose notes are a formula: the CSV shows it as text.
    let (st, v) = s
        .post(
            "/v1/logs",
            &ops,
            json!({"schedule_id": overdue, "issues_found": "none",
                   "notes": "=HYPERLINK(\"http://x\",\"ok\")",
                   "performed_at": rfc3339(now - day)}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .post("/v1/logs", &ops, json!({"schedule_id": overdue, "issues_found": "none", "performed_at": "1969-07-20T20:17:00Z"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("performed_at"),
        "{v}"
    );
    for token in [&ops, &r] {
        let (st, body) = text(&s, "/v1/logs", token, "text/csv").await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let mut rd = csv::Reader::from_reader(body.as_bytes());
        let notes = rd
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "notes")
            .unwrap();
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1, "{body}");
        assert_eq!(&rows[0][notes], "'=HYPERLINK(\"http://x\",\"ok\")");
    }

    // limit on the list routes.
    for path in [
        "/v1/ops/analytics/workers?limit=0",
        "/v1/ops/webhooks?limit=501",
        "/v1/ops/analytics/parts?limit=x",
        "/v1/stock?limit=10000",
        "/v1/schedules?limit=-1",
    ] {
        let (st, v) = s.get(path, &ops).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with("limit"),
            "{v}"
        );
    }
    let (st, v) = s.get("/v1/ops/webhooks?limit=500", &ops).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_a_worker_sees_their_van_and_consumes_for_their_jobs() {
    let s = Server::start(&[]).await;
    let ops = s.ops();
    let (st, v) = s
        .post("/v1/parts", &ops, json!({"sku": "VALVE-1", "name": "Valve", "unit_cost_cents": 500, "reorder_point": 0, "reorder_qty": 1}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let part = v["id"].as_str().unwrap().to_string();
    let (a, ta) = s.user("worker", &["plumbing"]).await;
    let (b, _) = s.user("worker", &["plumbing"]).await;
    let mv = |body: Value| async { s.post("/v1/stock/movements", &ops, body).await };
    let (st, v) =
        mv(json!({"part_id": part, "to": "depot:main", "qty": 10, "kind": "receive"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    for w in [&a, &b] {
        let (st, v) = mv(json!({"part_id": part, "from": "depot:main", "to": format!("van:{w}"), "qty": 2, "kind": "transfer"})).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    // Worker a: only movements into or out of their own van.
    for q in ["", "?location=depot:main", &format!("?part_id={part}")] {
        let (st, v) = s.get(&format!("/v1/stock/movements{q}"), &ta).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let ms = v["movements"].as_array().unwrap();
        assert_eq!(ms.len(), 1, "{q}: {v}");
        assert_eq!(ms[0]["to"], format!("van:{a}"));
    }
    let (st, _) = s
        .get(&format!("/v1/stock/movements?location=van:{b}"), &ta)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A consume naming a job: an existing job of theirs, else 400.
    let (st, v) = s
        .post("/v1/stock/movements", &ta, json!({"part_id": part, "from": format!("van:{a}"), "qty": 1, "kind": "consume", "job_id": "job_nope"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("job_id"),
        "{v}"
    );
    let (_, r) = s.user("resident", &[]).await;
    let theirs = s.create_job(&r, 10.0, 10.0, "nobody").await;
    let (st, v) = s
        .post("/v1/stock/movements", &ta, json!({"part_id": part, "from": format!("van:{a}"), "qty": 1, "kind": "consume", "job_id": theirs["id"]}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "not their job: {v}");
    // A part with stock on hand cannot be deleted; roles before bodies.
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/v1/parts/{part}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "conflict");
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/parts/{part}"),
            Some(&ops),
            Some(json!({"created_at": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .raw(
            Method::POST,
            "/v1/parts",
            Some(&ta),
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await
        .into_first();
    assert_eq!(st, StatusCode::FORBIDDEN, "roles before bodies");
    let (st, _) = s
        .raw(
            Method::POST,
            "/v1/ops/triage/examples",
            Some(&r),
            Some("text/plain"),
            b"x".to_vec(),
        )
        .await
        .into_first();
    assert_eq!(st, StatusCode::FORBIDDEN, "roles before bodies");
}

trait First {
    fn into_first(self) -> (StatusCode, Value);
}
impl First for (StatusCode, reqwest::header::HeaderMap, Value) {
    fn into_first(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

fn pdf(end: &[u8]) -> Vec<u8> {
    let mut b =
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n".to_vec();
    b.extend_from_slice(end);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_whole_files_within_a_quota() {
    // 4 KiB of quota each.
    let mut s = Server::start(&[("DISPATCHD_ATTACHMENTS_QUOTA_BYTES_PER_USER", "4096")]).await;
    let (rid, r) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;
    // A PNG signature followed by HTML; a PNG with HTML after its end; a
    // PDF without %%EOF.
    let mut polyglot = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    polyglot.extend_from_slice(b"<html><script>alert(1)</script></html>");
    polyglot.resize(400, b' ');
    let mut appended = common::png(1);
    appended.extend_from_slice(b"<html><script>alert(1)</script></html>");
    for (ct, bytes) in [
        ("image/png", polyglot),
        ("image/png", appended),
        ("application/pdf", pdf(b"")),
        (
            "image/jpeg",
            vec![
                0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0,
                0, 0xFF, 0xD9,
            ],
        ),
    ] {
        let (st, v) = s.post_attachment(Some(&r), Some(ct), bytes).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {v}");
    }
    let (st, v) = s
        .post_attachment(Some(&r), Some("application/pdf"), pdf(b"%%EOF\r\n"))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let first = v["size"].as_u64().unwrap();
    // The same bytes again count once; new ones fill the quota.
    let photo = common::png_sized(2, 1500);
    let (st, v) = s
        .post_attachment(Some(&r), Some("image/png"), photo.clone())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s.post_attachment(Some(&r), Some("image/png"), photo).await;
    assert_eq!(st, StatusCode::CREATED, "the same bytes again: {v}");
    let (st, v) = s.get(&format!("/v1/ops/users/{rid}/usage"), &s.ops()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["attachment_bytes"].as_u64(), Some(first + 1500), "{v}");
    assert_eq!(v["quota_bytes"], 4096);
    let (st, v) = s
        .post_attachment(Some(&r), Some("image/png"), common::png_sized(3, 3000))
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    Server::assert_error(&v, "quota_exceeded");
    // Another user is unaffected; the usage survives kill -9.
    let (st, v) = s
        .post_attachment(Some(&other), Some("image/png"), common::png_sized(3, 3000))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.restart().await;
    let (st, v) = s
        .post_attachment(Some(&r), Some("image/png"), common::png_sized(4, 3000))
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "after a restart: {v}");
    let (_, v) = s.get(&format!("/v1/ops/users/{rid}/usage"), &s.ops()).await;
    assert_eq!(v["attachment_bytes"].as_u64(), Some(first + 1500), "{v}");
}

/// Resident set size of the server, KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teaching_triage_costs_memory_for_its_own_words_only() {
    let s = Server::start(&[]).await;
    let ops = s.ops();
    let (_, r) = s.user("resident", &[]).await;
    // Warm the classifier and the allocator.
    let (st, _) = s
        .post("/v1/triage", &r, json!({"description": "the tap drips"}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let before = rss_kib(s.pid());
    // 1 000 examples of ~300 random words (≤ 2 000 characters), jobs
    // created all the while.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut word = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (0..5)
            .map(|i| (b'a' + ((seed >> (i * 5)) % 26) as u8) as char)
            .collect::<String>()
    };
    let mut examples = Vec::new();
    for _ in 0..1000 {
        let mut d = String::new();
        while d.len() < 1990 {
            d.push_str(&word());
            d.push(' ');
        }
        examples.push(d);
    }
    let creator = {
        let (base, r) = (s.base.clone(), r.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            for i in 0..200 {
                let resp = http
                    .post(format!("{base}/v1/jobs"))
                    .bearer_auth(&r)
                    .json(&json!({"lat": 10.0 + i as f64 * 1e-3, "lng": 10.0, "skill": "nobody"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
                n += 1;
            }
            n
        })
    };
    for d in &examples {
        let (st, v) = s
            .post(
                "/v1/ops/triage/examples",
                &ops,
                json!({"description": d, "skill": "pest", "urgency": "low"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    assert_eq!(creator.await.unwrap(), 200);
    let grown_mib = rss_kib(s.pid()).saturating_sub(before) / 1024;
    eprintln!("RSS grew {grown_mib} MiB over 1 000 examples");
    // Each example keeps its own ~600 new features and its text; copies
    // of the model per example (the finding) cost ~3x that: 274 MiB for
    // 600 examples of 500 words. Measured here: ~92 MiB.
    assert!(
        grown_mib < 128,
        "RSS grew {grown_mib} MiB for 1 000 examples"
    );
    // An example longer than 2 000 characters is refused.
    let (st, v) = s
        .post(
            "/v1/ops/triage/examples",
            &ops,
            json!({"description": "é".repeat(2001), "skill": "pest", "urgency": "low"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // It learned: one of the random words now says pest.
    let (st, v) = s
        .post("/v1/triage", &r, json!({"description": examples[0]}))
        .await;
    assert_eq!(
        (st, v["skill"].as_str()),
        (StatusCode::OK, Some("pest")),
        "{v}"
    );
}

/// The log store's cache follows live work (API.md v1.2 findings): RSS
/// between the 1 000th and the 6 000th finished job. A benchmark, not a
/// check of today's code on every run (a minute of jobs):
/// `cargo test -p gateway --test tighter -- --ignored --nocapture rss_between`
/// (figure in BENCHMARKS.md, "The log's cache").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn rss_between_the_1000th_and_the_6000th_finished_job() {
    let s = Server::start(&[]).await;
    let (_, r) = s.user("resident", &[]).await;
    let mut w = s.worker_online(&["plumbing"], 51.5005, -0.12).await;
    let mut at_1000 = 0;
    for n in 1..=6000 {
        if n % 50 == 0 {
            // A fresh position: the worker stays matchable.
            w.ws.request(json!({"type": "location", "lat": 51.5005, "lng": -0.12}))
                .await;
        }
        let j = s.create_job(&r, 51.5, -0.12, "plumbing").await;
        let id = j["id"].as_str().unwrap().to_string();
        w.ws.next_where("offer", |m| m["job_id"] == id.as_str())
            .await;
        for step in ["accept", "arrive", "complete"] {
            let (st, v) = s
                .post(&format!("/v1/jobs/{id}/{step}"), &w.token, json!({}))
                .await;
            assert_eq!(st, StatusCode::OK, "{step}: {v}");
        }
        if n == 1000 {
            at_1000 = rss_kib(s.pid());
        }
    }
    let at_6000 = rss_kib(s.pid());
    eprintln!(
        "RSS at the 1 000th finished job {} MiB, at the 6 000th {} MiB ({:+} MiB)",
        at_1000 / 1024,
        at_6000 / 1024,
        (at_6000 as i64 - at_1000 as i64) / 1024
    );
    assert!(at_6000 < at_1000 + 24 * 1024, "{at_1000} → {at_6000} KiB");
}
