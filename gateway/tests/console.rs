//! The ops console: its assets as served (types, CSP, ETag), the ops
//! `watch` topics over the WebSocket (snapshot, changes, jobs, ops only),
//! and — with `E2E_BROWSER=1`, which `scripts/test.sh` sets after
//! installing Chromium and the console's npm packages — the page in a real
//! headless Chromium (`gateway/console/e2e/browser.mjs`): sign in, the
//! right number of worker markers, a new job on the map within 2 s, a
//! dead letter retried with its button. Screenshots of each step go to
//! `target/tmp/console-screenshots/`.

mod common;

use std::time::Duration;

use common::{Server, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let s = Server::start(&[]).await;
    let http = reqwest::Client::new();
    for (path, ty) in [
        ("/ops", "text/html"),
        ("/ops/app.js", "text/javascript"),
        ("/ops/app.css", "text/css"),
    ] {
        let r = http.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ty),
            "{path}: {h:?}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        let etag = h["etag"].to_str().unwrap().to_owned();
        let body = r.bytes().await.unwrap();
        assert!(body.len() > 500, "{path}");
        let again = http
            .get(format!("{}{path}", s.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // Nothing in the page is fetched from elsewhere.
    let html = http
        .get(format!("{}/ops", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
}

/// The next `fleet` message, as worker id → state.
async fn fleet(ws: &mut Ws) -> (bool, Vec<(String, String)>) {
    let m = ws.next_of("fleet").await;
    let full = m["full"].as_bool().unwrap_or(false);
    let mut v: Vec<(String, String)> = m["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(w["lat"].is_f64() && w["lng"].is_f64(), "{w}");
            (
                w["id"].as_str().unwrap().to_owned(),
                w["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    (full, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_watch_the_fleet_and_every_job() {
    let s = Server::start(&[]).await;
    let ops = s.ops();
    let (_, r) = s.user("resident", &[]).await;
    let a = s.worker_online(&["plumbing"], 51.5005, -0.12).await;
    let mut b = s.worker_online(&["plumbing"], 51.51, -0.12).await;

    // Only ops may watch; topics are checked.
    let mut ws = Ws::connect(&s, &r, false).await;
    let e = ws
        .request_err(json!({"type": "watch", "topics": ["fleet"]}))
        .await;
    assert_eq!(e["code"], "forbidden", "{e}");
    let mut ws = Ws::connect(&s, &ops, false).await;
    let e = ws
        .request_err(json!({"type": "watch", "topics": ["fleet", "nope"]}))
        .await;
    assert_eq!(e["code"], "invalid_input", "{e}");

    // The snapshot first.
    ws.request(json!({"type": "watch", "topics": ["fleet", "jobs"]}))
        .await;
    let (full, workers) = fleet(&mut ws).await;
    assert!(full);
    let mut want = vec![
        (a.id.clone(), "available".to_owned()),
        (b.id.clone(), "available".to_owned()),
    ];
    want.sort();
    assert_eq!(workers, want);

    // A job: every job message reaches the watcher, and the offered
    // worker's state changes in the next fleet message (≤ 1 s).
    let j = s.create_job(&r, 51.5, -0.12, "plumbing").await;
    let id = j["id"].as_str().unwrap();
    let m = ws
        .next_where("job", |m| {
            m["job"]["id"] == id && m["job"]["status"] == "offered"
        })
        .await;
    assert_eq!(m["job"]["worker_id"], a.id.as_str());
    let (full, changed) = fleet(&mut ws).await;
    assert!(!full);
    assert_eq!(changed, vec![(a.id.clone(), "offered".to_owned())]);

    // A worker going off-line.
    b.ws.send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;
    let (_, changed) = fleet(&mut ws).await;
    assert_eq!(changed, vec![(b.id.clone(), "offline".to_owned())]);

    // Unwatched: no more fleet messages.
    ws.request(json!({"type": "unwatch", "topics": ["fleet"]}))
        .await;
    s.put(
        "/v1/workers/me/location",
        &a.token,
        json!({"lat": 51.502, "lng": -0.12}),
    )
    .await;
    let quiet = ws.recv_within(Duration::from_millis(2500)).await;
    assert!(
        quiet.as_ref().is_none_or(|m| m["type"] != "fleet"),
        "{quiet:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    if std::env::var("E2E_BROWSER").as_deref() != Ok("1") {
        eprintln!("skipped: E2E_BROWSER=1 (set by scripts/test.sh) runs it");
        return;
    }
    let s = Server::start(&[("DISPATCHD_DISPATCH_SEARCH_TIMEOUT_S", "2")]).await;
    let ops = s.ops();
    let email = format!("{}@example.com", common::unique("ops"));
    let password = "Console-Passw0rd";
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/auth/register",
            Some(&ops),
            Some(json!({"email": email, "password": password, "name": "Ops", "role": "ops"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, r) = s.user("resident", &[]).await;
    let mut workers = Vec::new();
    for i in 0..3 {
        workers.push(
            s.worker_online(&["plumbing"], 51.5 + i as f64 * 0.004, -0.12)
                .await,
        );
    }
    // A dead letter: nobody has the skill.
    let dead = s.create_job(&r, 51.5, -0.12, "roofing").await;
    let dead = dead["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first_unmatched = loop {
        let j: Value = s.job(&dead, &ops).await;
        if j["status"] == "unmatched" {
            break j["unmatched_at"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let console = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut node = std::process::Command::new("node");
    node.arg("e2e/browser.mjs")
        .current_dir(&console)
        .env("BASE", &s.base)
        .env("EMAIL", &email)
        .env("PASSWORD", password)
        .env("RESIDENT_TOKEN", &r)
        .env("WORKERS", workers.len().to_string())
        .env("WORKER_ID", &workers[0].id)
        .env("DEAD_JOB", &dead)
        .env("SHOTS", &shots);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "the browser run failed:\n{text}");
    let n = std::fs::read_dir(&shots).unwrap().count();
    assert!(n >= 7, "screenshots: {n}");
    // The button's retry reached the server: searching again, or
    // unmatched a second time (its search is 2 s).
    let j: Value = s.job(&dead, &ops).await;
    assert!(
        j["status"] == "searching" || j["unmatched_at"] != first_unmatched,
        "{j}"
    );
}
