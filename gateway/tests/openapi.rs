//! `GET /openapi.json` against the router: every `.route(…)` of
//! `gateway/src/routes/mod.rs`, with each of its methods, is described in
//! the document, and the document describes nothing the router lacks. The
//! served document is OpenAPI 3.1 with every `$ref` resolvable.

mod common;

use std::collections::BTreeSet;

use common::Server;
use serde_json::Value;

/// (METHOD, path) of every route the router source declares.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/routes/mod.rs");
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        let body_start = i + ".route(".len();
        let bytes = rest.as_bytes();
        let mut depth = 1;
        let mut j = body_start;
        while depth > 0 {
            match bytes[j] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            j += 1;
        }
        let call = &rest[body_start..j - 1];
        // A catch-all `{*name}` is the path parameter `{name}` in the document.
        let path = call
            .split('"')
            .nth(1)
            .expect("a quoted path")
            .replace("{*", "{");
        let chain = &call[call.find(',').expect("path, handler") + 1..];
        // Method routers: `get(…)`, `.post(…)` … at depth 0 of the chain.
        let mut depth = 0;
        let mut word = String::new();
        for c in chain.chars() {
            match c {
                '(' => {
                    if depth == 0
                        && ["get", "post", "put", "patch", "delete"].contains(&word.as_str())
                    {
                        out.insert((word.to_uppercase(), path.clone()));
                    }
                    depth += 1;
                    word.clear();
                }
                ')' => {
                    depth -= 1;
                    word.clear();
                }
                c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => word.push(c),
                _ => word.clear(),
            }
        }
        rest = &rest[j..];
    }
    out
}

#[test]
fn the_document_and_the_router_name_the_same_routes() {
    let routes = router_routes();
    assert!(routes.len() >= 50, "{routes:?}");
    let documented: BTreeSet<(String, String)> =
        gateway::openapi::operations().into_iter().collect();
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_openapi_3_1_and_whole() {
    let s = Server::start(&[]).await;
    let r = reqwest::get(format!("{}/openapi.json", s.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(ops, gateway::openapi::operations().len());
    // Every operation answers with its errors in the contract's shape.
    let job = &doc["paths"]["/v1/jobs"]["post"];
    for status in ["201", "400", "401", "422", "429", "503"] {
        assert!(job["responses"][status].is_object(), "{status}: {job}");
    }
    assert_eq!(
        job["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateJob"
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").expect(&r);
        assert!(schemas.contains_key(name), "unresolved {r}");
    }
    // Closed sets of values are enums, so clients and fuzzers know them.
    assert_eq!(
        schemas["JobView"]["properties"]["status"]["$ref"],
        "#/components/schemas/JobStatus"
    );
    let statuses: Vec<&str> = schemas["JobStatus"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "searching",
            "offered",
            "accepted",
            "arrived",
            "completed",
            "cancelled",
            "unmatched"
        ]
    );
    for (schema, values) in [
        ("Urgency", 4),
        ("Role", 3),
        ("IssuesFound", 3),
        ("ScheduleStatus", 4),
        ("PaymentStatus", 4),
    ] {
        assert_eq!(
            schemas[schema]["enum"].as_array().map(Vec::len),
            Some(values),
            "{schema}"
        );
    }
    // A schema generated from its type: JobView's fields.
    let job_view = &schemas["JobView"]["properties"];
    for field in [
        "id",
        "status",
        "skill",
        "urgency",
        "paid_cents",
        "attachments",
    ] {
        assert!(job_view[field].is_object(), "{field}");
    }
}
