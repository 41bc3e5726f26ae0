//! Maintenance programmes (API.md v1.1) end to end through the real
//! binary, on the embedded store and (`E2E_BACKEND=redis`) a one-node
//! cluster: a schedule dispatches itself to its assigned worker, the
//! completed job writes the log and rolls the schedule, logs by hand, who
//! may see what, the CSV and calendar exports read back with real parsers,
//! the due/overdue check raising each alert once, bad input, and `kill -9`
//! in the middle of a programme.

mod common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::sinks::Receiver;
use common::{millis, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WEEK_MS: i64 = 7 * 86_400_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// The daily check runs once at start (nothing to alert yet) and not
/// again for ~23 hours: the manual check is the one under test.
async fn server(extra: &[(&str, &str)]) -> Server {
    let m = (now_ms() / 60_000 - 60).rem_euclid(24 * 60);
    let at = format!("{:02}:{:02}", m / 60, m % 60);
    let mut env = vec![
        ("DISPATCHD_MAINTENANCE_CHECK_AT_UTC", at.as_str()),
        ("DISPATCHD_NOTIFY_ALLOW_PRIVATE_TARGETS", "true"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env).await
}

async fn property(s: &Server, owner: &str, lat: f64, lng: f64) -> String {
    let (st, v) = s
        .post(
            "/v1/properties",
            &s.ops(),
            json!({"name": "Elm Court 3", "address": "3 Elm St, Leeds", "lat": lat, "lng": lng, "owner_id": owner}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn schedule(s: &Server, body: Value) -> Value {
    let (st, v) = s.post("/v1/schedules", &s.ops(), body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn step(s: &Server, token: &str, job: &str, step: &str) -> Value {
    let (st, v) = s
        .post(&format!("/v1/jobs/{job}/{step}"), token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{step}: {v}");
    v
}

async fn text(s: &Server, path: &str, token: Option<&str>, accept: &str) -> (StatusCode, String) {
    let mut r = reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .header("accept", accept);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_dispatches_itself_and_its_completion_writes_the_log() {
    let s = server(&[]).await;
    let ops = s.ops();
    let (rid, r) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;
    let pid = property(&s, &rid, 53.8, -1.55).await;
    // The nearer worker is not the assigned one.
    let mut near = s.worker_online(&["hvac"], 53.8005, -1.55).await;
    let mut far = s.worker_online(&["hvac"], 53.81, -1.55).await;
    let start = now_ms() + 2_000;
    let sch = schedule(
        &s,
        json!({
            "property_id": pid, "title": "Boiler service", "skill": "hvac",
            "description": "annual gas safety check",
            "every": {"unit": "week", "interval": 1}, "timezone": "Europe/Berlin",
            "start_at": rfc3339(start), "assigned_to": far.id,
        }),
    )
    .await;
    let sid = sch["id"].as_str().unwrap().to_string();
    assert_eq!(millis(&sch["next_due_at"]), start);
    assert_eq!(sch["status"], "due", "{sch}");
    assert_eq!(sch["anchor"], "due");
    assert_eq!(
        (sch["lead_s"].as_i64(), sch["missed"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(sch["open_job_id"].is_null());

    // Due: the job is created and offered to the assigned worker.
    let offer = far.ws.next_of("offer").await;
    let job = offer["job_id"].as_str().unwrap().to_string();
    let j = s.job(&job, &ops).await;
    assert_eq!(j["schedule_id"], sid.as_str(), "{j}");
    assert_eq!(j["property_id"], pid.as_str());
    assert_eq!(
        (j["lat"].as_f64(), j["skill"].as_str()),
        (Some(53.8), Some("hvac"))
    );
    assert_eq!(j["resident_id"], rid.as_str());
    let (_, v) = s.get(&format!("/v1/schedules/{sid}"), &ops).await;
    assert_eq!(v["open_job_id"], job.as_str(), "{v}");
    assert!(
        near.ws
            .recv_within(Duration::from_millis(300))
            .await
            .is_none_or(|m| m["type"] != "offer"),
        "the nearer worker is not offered it"
    );
    step(&s, &far.token, &job, "accept").await;
    step(&s, &far.token, &job, "arrive").await;
    step(&s, &far.token, &job, "complete").await;
    let (_, v) = s.get(&format!("/v1/schedules/{sid}"), &ops).await;
    assert_eq!(millis(&v["next_due_at"]), start + WEEK_MS, "rolled: {v}");
    assert!(v["open_job_id"].is_null(), "{v}");
    let (st, logs) = s.get(&format!("/v1/logs?schedule_id={sid}"), &ops).await;
    assert_eq!(st, StatusCode::OK, "{logs}");
    let logs = logs["logs"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["job_id"], job.as_str());
    assert_eq!(logs[0]["performed_by"], far.id.as_str());
    assert_eq!(logs[0]["property_id"], pid.as_str());
    assert_eq!(logs[0]["issues_found"], "none");

    // A log by hand, with notes a spreadsheet must keep whole.
    let notes = "Pressure low, topped up; \"check again\"\nnext visit, bring valve";
    let photo = s.upload(&far.token, "image/png", common::png(7)).await;
    // Only the caller's own uploads.
    let theirs = s.upload(&near.token, "image/png", common::png(8)).await;
    let (st, v) = s
        .post(
            "/v1/logs",
            &far.token,
            json!({"schedule_id": sid, "issues_found": "minor", "attachments": [theirs]}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("attachments"),
        "{v}"
    );
    let (st, l) = s
        .post(
            "/v1/logs",
            &far.token,
            json!({"schedule_id": sid, "issues_found": "minor", "notes": notes, "attachments": [photo]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    assert_eq!(
        (l["notes"].as_str(), l["job_id"].is_null()),
        (Some(notes), true)
    );
    // The property's owner reads the log, so its photo too; a stranger not.
    assert_eq!(s.attachment(&photo, &r, None).await.0, StatusCode::OK);
    assert_eq!(
        s.attachment(&photo, &other, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, v) = s.get(&format!("/v1/schedules/{sid}"), &ops).await;
    assert_eq!(millis(&v["next_due_at"]), start + 2 * WEEK_MS);

    // Who sees what: the assigned worker reads the property too.
    let prop = format!("/v1/properties/{pid}");
    assert_eq!(s.get(&prop, &far.token).await.0, StatusCode::OK);
    assert_eq!(s.get(&prop, &near.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/v1/schedules/{sid}"), &r).await.0,
        StatusCode::OK
    );
    for t in [&other, &near.token] {
        let (st, v) = s.get(&format!("/v1/schedules/{sid}"), t).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        Server::assert_error(&v, "not_found");
    }
    let (_, v) = s.get("/v1/schedules", &other).await;
    assert!(v["schedules"].as_array().unwrap().is_empty());
    let (_, v) = s.get("/v1/schedules", &far.token).await;
    assert_eq!(v["schedules"].as_array().unwrap().len(), 1);
    let (st, _) = s
        .post(
            "/v1/logs",
            &near.token,
            json!({"schedule_id": sid, "issues_found": "none"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "an unassigned worker");
    let (st, _) = s
        .post(
            "/v1/logs",
            &r,
            json!({"schedule_id": sid, "issues_found": "none"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a resident does not log");
    let (st, _) = s
        .post(
            "/v1/schedules",
            &far.token,
            json!({"property_id": pid, "title": "Mine", "skill": "hvac",
                   "every": {"unit": "day", "interval": 1}, "start_at": rfc3339(start)}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "only ops create schedules");
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/schedules/{sid}"),
            Some(&r),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, v) = s.get("/v1/logs", &r).await;
    assert_eq!(
        v["logs"].as_array().unwrap().len(),
        2,
        "the owner reads them: {v}"
    );
    let (_, v) = s.get("/v1/logs", &other).await;
    assert!(v["logs"].as_array().unwrap().is_empty());
    let (st, _) = s.get(&format!("/v1/logs?property_id={pid}"), &other).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // CSV: a header row, then the logs newest first, read by a CSV reader.
    let (st, body) = text(
        &s,
        &format!("/v1/logs?schedule_id={sid}"),
        Some(&ops),
        "text/csv",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[0], "id");
    let notes_col = header.iter().position(|h| h == "notes").unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        &rows[0][notes_col], notes,
        "quoting keeps commas, quotes and newlines"
    );
    assert!(body.contains("\r\n"), "RFC 4180 line ends");

    // The calendar: occurrences ahead with their zone, the logs behind,
    // stable UIDs; fetched with ?token= as calendar apps do.
    let path = format!("/v1/schedules.ics?token={r}");
    let (st, ics) = text(&s, &path, None, "text/calendar").await;
    assert_eq!(st, StatusCode::OK, "{ics}");
    let cal: icalendar::Calendar = ics.parse().expect("RFC 5545");
    let events: Vec<&icalendar::Event> =
        cal.components.iter().filter_map(|c| c.as_event()).collect();
    let uids: HashSet<String> = events
        .iter()
        .map(|e| icalendar::Component::get_uid(*e).unwrap().to_owned())
        .collect();
    assert_eq!(uids.len(), events.len(), "UIDs are unique");
    // Weekly for 90 days from two weeks ahead: 11 to 12; and two logs.
    assert!(
        (13..=14).contains(&events.len()),
        "{} events\n{ics}",
        events.len()
    );
    assert!(ics.contains("DTSTART;TZID=Europe/Berlin:"), "{ics}");
    assert!(
        ics.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin"),
        "{ics}"
    );
    let (_, again) = text(&s, &path, None, "text/calendar").await;
    let again: icalendar::Calendar = again.parse().unwrap();
    let uids_again: HashSet<String> = again
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .map(|e| icalendar::Component::get_uid(e).unwrap().to_owned())
        .collect();
    assert_eq!(uids, uids_again, "a re-import updates, never duplicates");
    assert_eq!(
        text(&s, "/v1/schedules.ics?token=nope", None, "text/calendar")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // PATCH: monthly from the start's next occurrence after the work; null
    // clears the worker; DELETE leaves the logs.
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/v1/schedules/{sid}"),
            Some(&ops),
            Some(json!({"every": {"unit": "month", "interval": 3}, "assigned_to": null, "lead_s": 3600})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["assigned_to"].is_null());
    assert_eq!(v["every"], json!({"unit": "month", "interval": 3}));
    assert!(millis(&v["next_due_at"]) > start + 80 * 86_400_000, "{v}");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/schedules/{sid}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/v1/schedules/{sid}"), &ops).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, v) = s.get(&format!("/v1/logs?schedule_id={sid}"), &ops).await;
    assert_eq!(v["logs"].as_array().unwrap().len(), 2, "logs stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_alerts_once_per_occurrence_and_bad_input_changes_nothing() {
    let hooks = Receiver::start().await;
    let s = server(&[]).await;
    let ops = s.ops();
    let (st, v) = s
        .post(
            "/v1/ops/webhooks",
            &ops,
            json!({"url": format!("{}/hook", hooks.url), "events": ["maintenance.due", "maintenance.overdue"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (rid, r) = s.user("resident", &[]).await;
    let pid = property(&s, &rid, 53.8, -1.55).await;
    let base = |title: &str, start: i64| {
        json!({"property_id": pid, "title": title, "skill": "roofing",
               "every": {"unit": "month", "interval": 1}, "start_at": rfc3339(start)})
    };
    let now = now_ms();
    // Due in two hours; overdue by one (its job is made at once; nobody
    // can take it); upcoming; paused.
    schedule(&s, base("Gutters", now + 2 * 3_600_000)).await;
    let overdue = schedule(&s, base("Roof tiles", now - 3_600_000)).await;
    assert_eq!(overdue["status"], "overdue");
    assert!(
        overdue["open_job_id"].is_string(),
        "dispatched at once: {overdue}"
    );
    schedule(&s, base("Chimney", now + 10 * 86_400_000)).await;
    let paused = schedule(&s, base("Skylight", now + 3_600_000)).await;
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/v1/schedules/{}", paused["id"].as_str().unwrap()),
            Some(&ops),
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("paused")));

    let (_, v) = s.get("/v1/schedules?status=due", &ops).await;
    assert_eq!(v["schedules"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = s.get("/v1/schedules", &r).await;
    let due: Vec<i64> = v["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| millis(&s["next_due_at"]))
        .collect();
    assert!(due.windows(2).all(|w| w[0] <= w[1]), "ordered by due date");
    let (_, v) = s
        .get(
            &format!("/v1/schedules?due_before={}", rfc3339(now + 86_400_000)),
            &ops,
        )
        .await;
    assert_eq!(v["schedules"].as_array().unwrap().len(), 3, "{v}");

    let before = s.metric("dispatchd_maintenance_alerts_total").await;
    let (st, v) = s.post("/v1/ops/maintenance/check", &ops, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"checked": 3, "due": 1, "overdue": 1, "alerts": 2})
    );
    let (_, v) = s.post("/v1/ops/maintenance/check", &ops, json!({})).await;
    assert_eq!(
        v,
        json!({"checked": 3, "due": 1, "overdue": 1, "alerts": 0}),
        "never twice"
    );
    assert_eq!(
        s.metric("dispatchd_maintenance_alerts_total").await - before,
        2.0
    );
    assert!(s.metric("dispatchd_maintenance_checked_total").await >= 6.0);
    // Both alerts reach the ops endpoint.
    let got = hooks
        .wait_for("/hook", Duration::from_secs(20), |r| r.len() >= 2)
        .await;
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(types, ["maintenance.due", "maintenance.overdue"]);
    let body = got[0].json();
    assert_eq!(body["data"]["property"]["id"], pid.as_str(), "{body}");
    assert!(body["data"]["schedule"]["id"].is_string(), "{body}");
    // 10 a minute: the two runs above and eight more, then 429.
    for _ in 0..8 {
        let (st, _) = s.post("/v1/ops/maintenance/check", &ops, json!({})).await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, v) = s.post("/v1/ops/maintenance/check", &ops, json!({})).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    Server::assert_error(&v, "rate_limited");
    // A worker may not run it.
    let w = s.user("worker", &["roofing"]).await.1;
    assert_eq!(
        s.post("/v1/ops/maintenance/check", &w, json!({})).await.0,
        StatusCode::FORBIDDEN
    );

    // Bad input: 400 naming the field, and nothing created.
    let (wid, _) = s.user("worker", &["roofing"]).await;
    let mut cases = vec![
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (
            json!({"every": {"unit": "week", "interval": 0}}),
            "every.interval",
        ),
        (
            json!({"every": {"unit": "fortnight", "interval": 1}}),
            "every.unit",
        ),
        (json!({"start_at": "tomorrow"}), "start_at"),
        (json!({"property_id": "prop_nope"}), "property_id"),
        (json!({"assigned_to": rid}), "assigned_to"),
        (json!({"anchor": "whenever"}), "anchor"),
        (json!({"lead_s": -1}), "lead_s"),
        (json!({"skill": "Not A Skill"}), "skill"),
    ];
    cases.push((json!({"assigned_to": wid, "title": ""}), "title"));
    for (patch, field) in cases {
        let mut body = base("Bad", now + 86_400_000);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (st, v) = s.post("/v1/schedules", &ops, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{field}: {v}");
        Server::assert_error(&v, "invalid_input");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let (_, v) = s.get("/v1/schedules?limit=500", &ops).await;
    assert_eq!(
        v["schedules"].as_array().unwrap().len(),
        4,
        "nothing created"
    );
    let sid = overdue["id"].as_str().unwrap();
    for (body, field) in [
        (
            json!({"schedule_id": sid, "issues_found": "some"}),
            "issues_found",
        ),
        (
            json!({"schedule_id": sid, "issues_found": "none", "performed_at": "yesterday"}),
            "performed_at",
        ),
        (
            json!({"schedule_id": sid, "issues_found": "none", "performed_at": rfc3339(now + 86_400_000)}),
            "performed_at",
        ),
    ] {
        let (st, v) = s.post("/v1/logs", &ops, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{field}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    let (st, v) = s.get("/v1/logs?from=never", &ops).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s.get("/v1/schedules?status=late", &ops).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_programme_loses_nothing_and_makes_no_second_job() {
    let mut s = server(&[]).await;
    let ops = s.ops();
    let (rid, _) = s.user("resident", &[]).await;
    let pid = property(&s, &rid, 53.8, -1.55).await;
    let mut w = s.worker_online(&["hvac"], 53.8005, -1.55).await;
    let start = now_ms() + 1_000;
    let sch = schedule(
        &s,
        json!({"property_id": pid, "title": "Filters", "skill": "hvac",
               "every": {"unit": "day", "interval": 1}, "start_at": rfc3339(start),
               "anchor": "completion"}),
    )
    .await;
    let sid = sch["id"].as_str().unwrap().to_string();
    let other = schedule(
        &s,
        json!({"property_id": pid, "title": "Smoke alarms", "skill": "general",
               "every": {"unit": "year", "interval": 1}, "start_at": rfc3339(start + 30 * 86_400_000)}),
    )
    .await;
    let (st, l) = s
        .post(
            "/v1/logs",
            &ops,
            json!({"schedule_id": other["id"], "issues_found": "major", "notes": "two dead"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let offer = w.ws.next_of("offer").await;
    let job = offer["job_id"].as_str().unwrap().to_string();

    s.restart().await; // kill -9, then start again
    let (_, v) = s.get(&format!("/v1/schedules/{sid}"), &ops).await;
    assert_eq!(v["open_job_id"], job.as_str(), "{v}");
    let (_, v) = s
        .get(
            &format!("/v1/logs?schedule_id={}", other["id"].as_str().unwrap()),
            &ops,
        )
        .await;
    let logs = v["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{v}");
    assert_eq!(logs[0]["id"], l["id"]);
    assert_eq!(logs[0]["notes"], "two dead");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, v) = s.get("/v1/jobs?limit=500", &ops).await;
    let mine: Vec<&Value> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["schedule_id"] == sid.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "one job for the occurrence: {v}");
    assert_eq!(mine[0]["id"], job.as_str());
    let (_, v) = s.get("/v1/schedules?limit=500", &ops).await;
    assert_eq!(v["schedules"].as_array().unwrap().len(), 2);
}
