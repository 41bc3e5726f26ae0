//! Parts and stock (API.md v1.1) end to end through the real binary, on
//! the embedded store and (`E2E_BACKEND=redis`) a one-node cluster: the
//! catalogue and `sku_taken`, every movement kind and who may post it,
//! `insufficient_stock` changing nothing, a reorder task made once and
//! received, a parts job skipping the nearer worker without the part,
//! reservation at accept, consumption at completion, release on cancel,
//! analytics, and `kill -9` keeping every acknowledged movement.

mod common;

use std::time::Duration;

use common::sinks::Receiver;
use common::Server;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn part(s: &Server, sku: &str, rp: i64, rq: i64) -> String {
    let (st, v) = s
        .post(
            "/v1/parts",
            &s.ops(),
            json!({"sku": sku, "name": format!("Part {sku}"), "fits": ["combi-24"], "unit_cost_cents": 1500,
                   "supplier": "Acme", "reorder_point": rp, "reorder_qty": rq}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn mv(s: &Server, token: &str, body: Value) -> (StatusCode, Value) {
    s.post("/v1/stock/movements", token, body).await
}

async fn bal(s: &Server, part: &str, loc: &str) -> Value {
    let (st, v) = s
        .get(
            &format!("/v1/stock?part_id={part}&location={loc}"),
            &s.ops(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["balances"]
        .as_array()
        .unwrap()
        .first()
        .cloned()
        .unwrap_or(json!({"on_hand": 0, "reserved": 0, "available": 0}))
}

fn triple(b: &Value) -> (i64, i64, i64) {
    (
        b["on_hand"].as_i64().unwrap(),
        b["reserved"].as_i64().unwrap(),
        b["available"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_its_rules_and_reorders() {
    let hooks = Receiver::start().await;
    let s = Server::start(&[("DISPATCHD_NOTIFY_ALLOW_PRIVATE_TARGETS", "true")]).await;
    let ops = s.ops();
    let (st, v) = s
        .post(
            "/v1/ops/webhooks",
            &ops,
            json!({"url": format!("{}/hook", hooks.url), "events": ["reorder.created"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let valve = part(&s, "VALVE-22", 5, 10).await;
    // The catalogue: sku unique (case-insensitive), readable by anyone.
    let (st, v) = s
        .post(
            "/v1/parts",
            &ops,
            json!({"sku": "valve-22", "name": "x", "unit_cost_cents": 1, "reorder_point": 0, "reorder_qty": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "sku_taken");
    let (wid, wt) = s.user("worker", &["plumbing"]).await;
    let (other, _) = s.user("worker", &["plumbing"]).await;
    let (_, r) = s.user("resident", &[]).await;
    let (st, v) = s.get("/v1/parts?q=valve&fits=combi-24", &r).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["parts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        s.get(&format!("/v1/parts/{valve}"), &wt).await.0,
        StatusCode::OK
    );
    let (st, _) = s
        .post(
            "/v1/parts",
            &wt,
            json!({"sku": "X", "name": "x", "unit_cost_cents": 1, "reorder_point": 0, "reorder_qty": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Movements: receive, transfer to a van; the worker consumes and
    // returns from their own van only.
    let my_van = format!("van:{wid}");
    let their_van = format!("van:{other}");
    let (st, v) = mv(
        &s,
        &ops,
        json!({"part_id": valve, "to": "depot:leeds", "qty": 12, "kind": "receive"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["by"].as_str()),
        (Some("receive"), Some("ops-1"))
    );
    let (st, _) = mv(&s, &ops, json!({"part_id": valve, "from": "depot:leeds", "to": my_van, "qty": 3, "kind": "transfer"})).await;
    assert_eq!(st, StatusCode::CREATED);
    mv(&s, &ops, json!({"part_id": valve, "from": "depot:leeds", "to": their_van, "qty": 2, "kind": "transfer"})).await;
    let (st, _) = mv(
        &s,
        &wt,
        json!({"part_id": valve, "from": my_van, "qty": 1, "kind": "consume", "note": "tap"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = mv(
        &s,
        &wt,
        json!({"part_id": valve, "from": my_van, "to": "depot:leeds", "qty": 1, "kind": "return"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    for body in [
        json!({"part_id": valve, "from": their_van, "qty": 1, "kind": "consume"}),
        json!({"part_id": valve, "from": my_van, "to": their_van, "qty": 1, "kind": "transfer"}),
        json!({"part_id": valve, "to": my_van, "qty": 1, "kind": "receive"}),
    ] {
        let (st, v) = mv(&s, &wt, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    assert_eq!(
        mv(
            &s,
            &r,
            json!({"part_id": valve, "to": "depot:leeds", "qty": 1, "kind": "receive"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(triple(&bal(&s, &valve, "depot:leeds").await), (8, 0, 8));
    assert_eq!(triple(&bal(&s, &valve, &my_van).await), (1, 0, 1));
    // Not enough: 409, nothing changes.
    let (st, v) = mv(
        &s,
        &ops,
        json!({"part_id": valve, "from": "depot:leeds", "qty": 9, "kind": "consume"}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    Server::assert_error(&v, "insufficient_stock");
    assert_eq!(triple(&bal(&s, &valve, "depot:leeds").await), (8, 0, 8));
    // Bad input names the field and changes nothing.
    for (body, field) in [
        (
            json!({"part_id": valve, "to": "depot:leeds", "qty": 0, "kind": "receive"}),
            "qty",
        ),
        (
            json!({"part_id": valve, "to": "depot:leeds", "qty": 1.5, "kind": "receive"}),
            "qty",
        ),
        (
            json!({"part_id": valve, "to": "depot:leeds", "qty": 1, "kind": "gift"}),
            "kind",
        ),
        (
            json!({"part_id": "part_nope", "to": "depot:leeds", "qty": 1, "kind": "receive"}),
            "part_id",
        ),
        (
            json!({"part_id": valve, "to": "garage", "qty": 1, "kind": "receive"}),
            "to",
        ),
        (
            json!({"part_id": valve, "from": "depot:leeds", "qty": 1, "kind": "receive"}),
            "kind",
        ),
    ] {
        let (st, v) = mv(&s, &ops, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{field}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    assert_eq!(triple(&bal(&s, &valve, "depot:leeds").await), (8, 0, 8));

    // The worker sees their van and the depots, not another van.
    let (_, v) = s.get("/v1/stock", &wt).await;
    let locs: Vec<&str> = v["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["location"].as_str().unwrap())
        .collect();
    assert!(
        locs.contains(&my_van.as_str()) && locs.contains(&"depot:leeds"),
        "{v}"
    );
    assert!(!locs.contains(&their_van.as_str()), "{v}");
    let (_, v) = s
        .get(&format!("/v1/stock/movements?location={my_van}"), &wt)
        .await;
    assert_eq!(v["movements"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(
        s.get(&format!("/v1/stock/movements?location={their_van}"), &wt)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, v) = s
        .get(&format!("/v1/stock/movements?part_id={valve}"), &ops)
        .await;
    let all = v["movements"].as_array().unwrap();
    assert_eq!(all.len(), 5, "{v}");
    assert_eq!(all[0]["kind"], "return", "newest first");

    // Reorder, on a movement that lowers stock: my van went down to 1
    // (≤ the point 5). Their van received 2 but was never lowered: the
    // check finds it. The depot (8) is not low until it drops to 5.
    let (_, v) = s.get("/v1/ops/reorder/tasks?status=open", &ops).await;
    let open = v["tasks"].as_array().unwrap().clone();
    assert_eq!(open.len(), 1, "{v}");
    assert_eq!(open[0]["location"], my_van.as_str());
    let (_, v) = s.post("/v1/ops/reorder/check", &ops, json!({})).await;
    assert_eq!(v["created"], 1, "their van: {v}");
    mv(&s, &ops, json!({"part_id": valve, "from": "depot:leeds", "qty": 3, "kind": "adjust", "note": "count"})).await;
    let (_, v) = s.get("/v1/ops/reorder/tasks?status=open", &ops).await;
    let depot: Vec<&Value> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["location"] == "depot:leeds")
        .collect();
    assert_eq!(depot.len(), 1, "{v}");
    assert_eq!(
        depot[0]["qty"], 10,
        "max(reorder_qty, point − available + 1)"
    );
    let (_, v) = s.post("/v1/ops/reorder/check", &ops, json!({})).await;
    assert_eq!(v["created"], 0, "never a second open task: {v}");
    assert_eq!(s.metric("dispatchd_stock_low").await, 3.0);
    let low = s.get("/v1/stock?low=true", &ops).await.1;
    assert_eq!(low["balances"].as_array().unwrap().len(), 3, "{low}");
    // A rule for one location overrides the part's defaults (and is
    // checked at once: York has nothing, 0 ≤ 2).
    let (st, _) = s
        .put("/v1/stock/rules", &ops, json!({"part_id": valve, "location": "depot:york", "reorder_point": 2, "reorder_qty": 4}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = s.get("/v1/ops/reorder/tasks?status=open", &ops).await;
    let york: Vec<&Value> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["location"] == "depot:york")
        .collect();
    assert_eq!(york.len(), 1, "{v}");
    assert_eq!(york[0]["qty"], 4);
    let tid = depot[0]["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .post(
            &format!("/v1/ops/reorder/tasks/{tid}/ordered"),
            &ops,
            json!({}),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("ordered"))
    );
    let (st, v) = s
        .post(
            &format!("/v1/ops/reorder/tasks/{tid}/received"),
            &ops,
            json!({}),
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("received")),
        "{v}"
    );
    assert_eq!(triple(&bal(&s, &valve, "depot:leeds").await), (15, 0, 15));
    let (st, _) = s
        .post(
            &format!("/v1/ops/reorder/tasks/{tid}/cancel"),
            &ops,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "a received task is done");
    // A van's task filled from the depot: a transfer, not a purchase.
    let (_, v) = s.get("/v1/ops/reorder/tasks?status=open", &ops).await;
    let theirs = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["location"] == their_van.as_str())
        .unwrap()
        .clone();
    assert_eq!(theirs["qty"], 10);
    let path = format!(
        "/v1/ops/reorder/tasks/{}/received",
        theirs["id"].as_str().unwrap()
    );
    let (st, v) = s.post(&path, &ops, json!({"from": "depot:leeds"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(triple(&bal(&s, &valve, &their_van).await), (12, 0, 12));
    assert_eq!(triple(&bal(&s, &valve, "depot:leeds").await), (5, 0, 5));
    // Each new task told ops once.
    let got = hooks
        .wait_for("/hook", Duration::from_secs(20), |g| g.len() >= 4)
        .await;
    assert!(got.iter().all(|h| h.json()["type"] == "reorder.created"));
    assert_eq!(got[0].json()["data"]["part"]["sku"], "VALVE-22");

    // Editing a part keeps its history; deleting it keeps the movements.
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/v1/parts/{valve}"),
            Some(&ops),
            Some(json!({"name": "Valve 22 mm"})),
        )
        .await;
    assert_eq!(
        (st, v["name"].as_str()),
        (StatusCode::OK, Some("Valve 22 mm"))
    );
    let (_, v) = s
        .get(&format!("/v1/stock/movements?part_id={valve}"), &ops)
        .await;
    assert_eq!(v["movements"].as_array().unwrap().len(), 8, "{v}");
    let path = format!("/v1/parts/{valve}");
    // Still on hand somewhere: it stays (API.md v1.2).
    let (st, v) = s.call(Method::DELETE, &path, Some(&ops), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    // Counted out of every location, then it may go.
    let (_, v) = s.get(&format!("/v1/stock?part_id={valve}"), &ops).await;
    let mut adjusted = 0;
    for b in v["balances"].as_array().unwrap() {
        let n = b["on_hand"].as_i64().unwrap();
        if n > 0 {
            let (st, v) = s
                .post(
                    "/v1/stock/movements",
                    &ops,
                    json!({"part_id": valve, "from": b["location"], "qty": n, "kind": "adjust"}),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            adjusted += 1;
        }
    }
    let (st, _) = s.call(Method::DELETE, &path, Some(&ops), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&path, &ops).await.0, StatusCode::NOT_FOUND);
    let (_, v) = s
        .get(&format!("/v1/stock/movements?part_id={valve}"), &ops)
        .await;
    assert_eq!(
        v["movements"].as_array().unwrap().len(),
        8 + adjusted,
        "the ledger stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parts_job_goes_to_the_worker_who_carries_them() {
    let mut s = Server::start(&[]).await;
    let ops = s.ops();
    let pump = part(&s, "PUMP-1", 0, 1).await;
    let mut near = s.worker_online(&["plumbing"], 51.5005, -0.12).await;
    let mut far = s.worker_online(&["plumbing"], 51.51, -0.12).await;
    let far_van = format!("van:{}", far.id);
    mv(
        &s,
        &ops,
        json!({"part_id": pump, "to": far_van, "qty": 2, "kind": "receive"}),
    )
    .await;
    let (_, r) = s.user("resident", &[]).await;
    let (st, j) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing", "parts": [{"part_id": pump, "qty": 2}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    assert_eq!(j["parts"], json!([{"part_id": pump, "qty": 2}]));
    let id = j["id"].as_str().unwrap().to_string();
    let offer = far.ws.next_of("offer").await;
    assert_eq!(
        offer["job_id"],
        id.as_str(),
        "the farther worker, who has the pump"
    );
    assert!(near
        .ws
        .recv_within(Duration::from_millis(300))
        .await
        .is_none_or(|m| m["type"] != "offer"));
    let step = |st: &'static str| format!("/v1/jobs/{id}/{st}");
    assert_eq!(
        s.post(&step("accept"), &far.token, json!({})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        triple(&bal(&s, &pump, &far_van).await),
        (2, 2, 0),
        "reserved at accept"
    );
    // Held parts cannot be consumed by hand.
    let (st, _) = mv(
        &s,
        &far.token,
        json!({"part_id": pump, "from": far_van, "qty": 1, "kind": "consume"}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    s.post(&step("arrive"), &far.token, json!({})).await;
    assert_eq!(
        s.post(&step("complete"), &far.token, json!({})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        triple(&bal(&s, &pump, &far_van).await),
        (0, 0, 0),
        "consumed at completion"
    );
    let (_, v) = s
        .get(&format!("/v1/stock/movements?part_id={pump}"), &ops)
        .await;
    let used = &v["movements"][0];
    assert_eq!(
        (
            used["kind"].as_str(),
            used["job_id"].as_str(),
            used["qty"].as_i64()
        ),
        (Some("consume"), Some(id.as_str()), Some(2))
    );

    // Accept then cancel: released.
    mv(
        &s,
        &ops,
        json!({"part_id": pump, "to": far_van, "qty": 1, "kind": "receive"}),
    )
    .await;
    let (_, j2) = s
        .post("/v1/jobs", &r, json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing", "parts": [{"part_id": pump, "qty": 1}]}))
        .await;
    let id2 = j2["id"].as_str().unwrap().to_string();
    far.ws
        .next_where("offer", |m| m["job_id"] == id2.as_str())
        .await;
    s.post(&format!("/v1/jobs/{id2}/accept"), &far.token, json!({}))
        .await;
    assert_eq!(triple(&bal(&s, &pump, &far_van).await), (1, 1, 0));
    let (st, _) = s
        .post(&format!("/v1/jobs/{id2}/cancel"), &r, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        triple(&bal(&s, &pump, &far_van).await),
        (1, 0, 1),
        "released on cancel"
    );
    // Bad lines: 400 naming the field.
    for (parts, field) in [
        (json!([{"part_id": "part_nope", "qty": 1}]), "parts.part_id"),
        (json!([{"part_id": pump, "qty": 0}]), "parts.qty"),
    ] {
        let (st, v) = s
            .post(
                "/v1/jobs",
                &r,
                json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing", "parts": parts}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    // Analytics: 2 consumed at 15.00, on hand 1.
    let (st, v) = s.get("/v1/ops/analytics/parts", &ops).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let a = v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part_id"] == pump.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (a["consumed"].as_i64(), a["consumed_cost_cents"].as_i64()),
        (Some(2), Some(3000)),
        "{a}"
    );
    assert_eq!(
        (a["on_hand"].as_i64(), a["value_on_hand_cents"].as_i64()),
        (Some(1), Some(1500))
    );
    assert_eq!(a["stockouts"], 1, "the completion left the van empty: {a}");
    assert!(a["days_of_cover"].as_f64().unwrap() > 0.0);

    // kill -9: every acknowledged movement and balance is back.
    s.restart().await;
    assert_eq!(triple(&bal(&s, &pump, &far_van).await), (1, 0, 1));
    let (_, v) = s
        .get(&format!("/v1/stock/movements?part_id={pump}"), &ops)
        .await;
    assert_eq!(v["movements"].as_array().unwrap().len(), 3, "{v}");
}
