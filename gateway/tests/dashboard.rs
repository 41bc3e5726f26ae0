//! `deploy/grafana/dispatchd.json` against a live server: every metric a
//! panel queries exists in `/metrics` (a dashboard that queries a renamed
//! metric fails here, not on an operator's screen), and — where
//! `promtool` is installed (`scripts/test.sh` installs it and sets
//! `E2E_PROMTOOL=1`, which makes it required) — `promtool check metrics`
//! finds nothing to complain about.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every `dispatchd_…` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("dispatchd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn names_are_read_out_of_expressions() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(dispatchd_match_duration_seconds_bucket[5m]))) / dispatchd_jobs"
        ),
        vec!["dispatchd_match_duration_seconds_bucket", "dispatchd_jobs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_exists() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dispatchd.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 20, "{all:?}");
    let wanted: BTreeSet<String> = all.iter().flat_map(|e| metric_names(e)).collect();
    for m in [
        "dispatchd_job_transitions_total",
        "dispatchd_match_duration_seconds_bucket",
        "dispatchd_offer_to_accept_seconds_bucket",
        "dispatchd_jobs",
        "dispatchd_jobs_unmatched_total",
        "dispatchd_ws_connections",
        "dispatchd_ws_slow_client_disconnects_total",
        "dispatchd_rate_limited_total",
        "dispatchd_log_append_duration_seconds_bucket",
        "dispatchd_outbox_pending",
        "dispatchd_stock_low",
    ] {
        assert!(wanted.contains(m), "the issue's panel on {m} is missing");
    }

    let s = Server::start(&[]).await;
    // One job through its steps, so every histogram has a sample.
    let (_, r) = s.user("resident", &[]).await;
    let mut w = s.worker_online(&["plumbing"], 51.5005, -0.12).await;
    let j = s.create_job(&r, 51.5, -0.12, "plumbing").await;
    let id = j["id"].as_str().unwrap();
    w.ws.next_of("offer").await;
    for step in ["accept", "arrive", "complete"] {
        let (st, v) = s
            .post(&format!("/v1/jobs/{id}/{step}"), &w.token, json!({}))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let text = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exposed: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|m| !exposed.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not in /metrics: {missing:?}"
    );

    let required = std::env::var("E2E_PROMTOOL").as_deref() == Ok("1");
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut p) => {
            p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = p.wait_with_output().unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && said.trim().is_empty(),
                "promtool: {said}"
            );
        }
        Err(e) if !required => eprintln!("promtool not run ({e}); scripts/test.sh installs it"),
        Err(e) => panic!("promtool is required (E2E_PROMTOOL=1): {e}"),
    }
}
