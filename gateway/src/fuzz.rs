//! Property tests over every decoder of untrusted input: HTTP bodies (JSON
//! and MessagePack), WebSocket messages in both encodings, query strings
//! and tokens, fed arbitrary bytes and mutations of well-formed inputs.
//! Each must return a value or the contract's error — never panic.
//!
//! The default test run takes `DISPATCHD_FUZZ_CASES` (default 2 000) cases
//! per decoder; the long run in BENCHMARKS.md takes a million:
//! `DISPATCHD_FUZZ_CASES=1000000 cargo test --release -p gateway --lib fuzz`

use axum::extract::FromRequestParts;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::de::DeserializeOwned;

use crate::auth::Auth;
use crate::body::Params;
use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::routes::auth::{LoginReq, RegisterReq};
use crate::routes::jobs::{CancelReq, CreateJob};
use crate::routes::maintenance::{NewLog, NewSchedule, Patch};
use crate::routes::notify::{NewWebhook, Prefs};
use crate::routes::payments::{PaymentIn, RatingIn};
use crate::routes::properties::NewProperty;
use crate::routes::stock::{NewMovement, NewPart, PartPatchIn, Rule, StepIn};
use crate::routes::triage::{ExampleIn, TriageReq};
use crate::routes::workers::{Availability, Location};
use crate::wire::{parse, parse_client, Format};

fn cases() -> u32 {
    std::env::var("DISPATCHD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Well-formed inputs to mutate: every client message and request body.
const SEEDS: &[&str] = &[
    r#"{"type":"location","lat":52.52,"lng":13.405,"req_id":7}"#,
    r#"{"type":"availability","available":true,"req_id":"a"}"#,
    r#"{"type":"accept","job_id":"job_0123456789abcdef0123456789abcdef"}"#,
    r#"{"type":"decline","job_id":"j","req_id":18446744073709551615}"#,
    r#"{"type":"subscribe","job_id":"j1"}"#,
    r#"{"type":"ping"}"#,
    r#"{"type":"watch","topics":["fleet","jobs"],"req_id":"w"}"#,
    r#"{"type":"unwatch","topics":["fleet"]}"#,
    r#"{"lat":-33.9,"lng":151.2,"skill":"plumbing","description":"leak under the sink"}"#,
    r#"{"email":"a@b.example","password":"Secret123","name":"Ada","role":"worker","skills":["hvac"]}"#,
    r#"{"email":"a@b.example","password":"Secret123"}"#,
    r#"{"reason":"no longer needed"}"#,
    r#"{"available":false}"#,
    r#"{"email":"r@example.com","sms":"+4917012345678","webhook":"https://example.com/h","events":["job.created"]}"#,
    r#"{"url":"https://example.com/hook","events":["*"]}"#,
    r#"{"name":"Flat 3","address":"3 Elm St","lat":51.5,"lng":-0.12,"owner_id":"u1"}"#,
    r#"{"property_id":"prop_0123","skill":"plumbing"}"#,
    r#"{"property_id":"prop_1","title":"Boiler","skill":"hvac","every":{"unit":"month","interval":3},"timezone":"Europe/Berlin","start_at":"2027-01-31T09:00:00Z","anchor":"due","lead_s":3600,"assigned_to":"w1"}"#,
    r#"{"every":{"unit":"week","interval":1},"assigned_to":null,"paused":true,"lead_s":0}"#,
    r#"{"sku":"VALVE-22","name":"Valve","fits":["combi-24"],"unit_cost_cents":1500,"supplier":"Acme","reorder_point":5,"reorder_qty":10}"#,
    r#"{"part_id":"part_1","from":"van:w1","to":"depot:leeds","qty":2,"kind":"return","job_id":"j1","note":"n"}"#,
    r#"{"part_id":"part_1","location":"depot:york","reorder_point":2,"reorder_qty":4}"#,
    r#"{"lat":51.5,"lng":-0.12,"skill":"plumbing","parts":[{"part_id":"part_1","qty":2}]}"#,
    r#"{"from":"depot:leeds"}"#,
    r#"{"description":"burst pipe in the loft"}"#,
    r#"{"stars":5,"comment":"quick, tidy"}"#,
    r#"{"job_id":"job_1","amount_cents":2000,"status":"succeeded","provider_ref":"pi_1"}"#,
    r#"{"description":"zorbulator zapping","skill":"appliance","urgency":"high"}"#,
    r#"{"lat":51.5,"lng":-0.12,"description":"sparks from the socket","urgency":"emergency"}"#,
    r#"{"lat":51.5,"lng":-0.12,"skill":"plumbing","attachments":["att_0123456789abcdef","att_2"]}"#,
    r#"{"schedule_id":"sch_1","performed_at":"2027-02-01T10:00:00Z","notes":"a, \"b\"\n","issues_found":"minor","attachments":["att_1"]}"#,
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len().max(1);
        match *e {
            Edit::Flip(i, b) if !bytes.is_empty() => bytes[i % n] ^= b | 1,
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Remove(i) if !bytes.is_empty() => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            Edit::Duplicate(a, b) if !bytes.is_empty() => {
                let (a, b) = (a % n, b % n);
                let (lo, hi) = (a.min(b), a.max(b));
                let chunk = bytes[lo..=hi.min(bytes.len() - 1)].to_vec();
                bytes.splice(hi..hi, chunk);
            }
            _ => {}
        }
    }
    bytes
}

/// Arbitrary bytes, or a seed (as JSON or re-encoded as MessagePack) mutated.
fn input() -> impl Strategy<Value = (Vec<u8>, Format)> {
    let fmt = prop_oneof![Just(Format::Json), Just(Format::Msgpack)];
    prop_oneof![
        (proptest::collection::vec(any::<u8>(), 0..256), fmt.clone()),
        (0..SEEDS.len(), fmt, proptest::collection::vec(edit(), 0..6)).prop_map(|(k, f, edits)| {
            let json: serde_json::Value = serde_json::from_str(SEEDS[k]).unwrap();
            let bytes = match f {
                Format::Json => SEEDS[k].as_bytes().to_vec(),
                Format::Msgpack => rmp_serde::to_vec_named(&json).unwrap(),
            };
            (apply(bytes, &edits), f)
        }),
    ]
}

fn contract(e: &ApiError) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.status().as_u16(), 400, "{}", e);
    prop_assert_eq!(e.code(), "invalid_input");
    prop_assert!(!e.to_string().is_empty());
    Ok(())
}

fn body<T: DeserializeOwned>(bytes: &[u8], f: Format) -> Result<(), TestCaseError> {
    match parse::<T>(bytes, f) {
        Ok(_) => Ok(()),
        Err(e) => contract(&e),
    }
}

#[test]
fn fuzz_websocket_messages() {
    runner()
        .run(&input(), |(bytes, f)| match parse_client(&bytes, f) {
            Ok(_) => Ok(()),
            Err((e, _)) => contract(&e),
        })
        .unwrap();
}

#[test]
fn fuzz_http_bodies() {
    runner()
        .run(&input(), |(bytes, f)| {
            body::<CreateJob>(&bytes, f)?;
            body::<RegisterReq>(&bytes, f)?;
            body::<LoginReq>(&bytes, f)?;
            body::<CancelReq>(&bytes, f)?;
            body::<Location>(&bytes, f)?;
            body::<Prefs>(&bytes, f)?;
            body::<NewWebhook>(&bytes, f)?;
            body::<NewProperty>(&bytes, f)?;
            body::<NewSchedule>(&bytes, f)?;
            body::<Patch>(&bytes, f)?;
            body::<NewLog>(&bytes, f)?;
            body::<NewPart>(&bytes, f)?;
            body::<PartPatchIn>(&bytes, f)?;
            body::<NewMovement>(&bytes, f)?;
            body::<Rule>(&bytes, f)?;
            body::<StepIn>(&bytes, f)?;
            body::<TriageReq>(&bytes, f)?;
            body::<ExampleIn>(&bytes, f)?;
            body::<RatingIn>(&bytes, f)?;
            body::<PaymentIn>(&bytes, f)?;
            body::<Availability>(&bytes, f)
        })
        .unwrap();
}

#[test]
fn fuzz_query_strings() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let query = prop_oneof![
        "[ -~]{0,64}",
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02x}")).collect::<String>()),
        ("(lat|lng|radius_m|limit|status)", "[-+0-9.eE%a-z]{0,12}")
            .prop_map(|(k, v)| format!("{k}={v}&limit={v}")),
    ];
    runner()
        .run(&query, |q| {
            let Ok(req) = axum::http::Request::builder()
                .uri(format!("/v1/workers/nearby?{q}"))
                .body(())
            else {
                // Not a URI hyper would hand us at all.
                return Ok(());
            };
            let (mut parts, ()) = req.into_parts();
            match rt.block_on(Params::from_request_parts(&mut parts, &())) {
                Ok(p) => {
                    for (field, r) in [
                        ("lat", p.num("lat", -90.0..=90.0).err()),
                        ("limit", p.num("limit", 1usize..=500).err()),
                        ("radius_m", p.num("radius_m", 1.0..=50_000.0).err()),
                    ] {
                        if let Some(e) = r {
                            contract(&e)?;
                            prop_assert!(e.to_string().starts_with(field));
                        }
                    }
                    Ok(())
                }
                Err(e) => contract(&e),
            }
        })
        .unwrap();
}

#[test]
fn fuzz_tokens() {
    let auth = Auth::new(&AuthConfig {
        jwt_secret: "fuzz-secret-0123456789".into(),
        max_concurrent_hashes: 1,
        ..AuthConfig::default()
    });
    let (good, _) = auth.mint("u1", persistence::Role::Worker, None, 2_000_000_000, 60);
    let token = prop_oneof![
        "[ -~]{0,300}",
        proptest::collection::vec(edit(), 1..6).prop_map(move |edits| {
            String::from_utf8_lossy(&apply(good.clone().into_bytes(), &edits)).into_owned()
        }),
    ];
    runner()
        .run(&token, |t| {
            if let Err(e) = auth.verify(&t) {
                prop_assert_eq!(e.status().as_u16(), 401);
                prop_assert_eq!(e.code(), "unauthorized");
            }
            Ok(())
        })
        .unwrap();
}
