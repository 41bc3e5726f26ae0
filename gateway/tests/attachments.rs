//! Attachments (API.md v1.1 "Intake") end to end, on the embedded store
//! and (`E2E_BACKEND=redis`) a one-node cluster: upload, content-addressed
//! storage (the same bytes once on disk), the type checked against the
//! bytes (415), the size limit before the body is read (413), who may
//! fetch (the uploader, ops, whoever may see a job listing it — the worker
//! it is offered to included — else 404), the headers it is served with,
//! jobs taking only their author's uploads, and `kill -9` (on the cluster
//! with the node's own copy wiped: the bytes come back from Redis).

mod common;

use std::time::Duration;

use common::{png, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX: usize = 64 * 1024;

fn pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    b.extend_from_slice(b"trailer << /Root 1 0 R >>\n%%EOF\n");
    b
}

/// Files stored under `attachments/` (not counting `tmp/`), and those in `tmp/`.
fn files_on_disk(s: &Server) -> (usize, usize) {
    let root = s.data_dir().join("attachments");
    let mut stored = 0;
    let mut tmp = 0;
    for d in std::fs::read_dir(&root).unwrap() {
        let d = d.unwrap();
        let n = std::fs::read_dir(d.path()).unwrap().count();
        if d.file_name() == "tmp" {
            tmp += n;
        } else {
            stored += n;
        }
    }
    (stored, tmp)
}

/// Raw HTTP/1.1: the request head (and body), then the status line.
async fn raw_status(s: &Server, head: String, body: &[u8]) -> String {
    let mut c = TcpStream::connect(&s.addr).await.unwrap();
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(body).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let read = async {
        loop {
            let n = c.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer without the body being sent");
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_store_serve_and_who_may_fetch() {
    let max = MAX.to_string();
    let mut s = Server::start(&[("DISPATCHD_ATTACHMENTS_MAX_BYTES", max.as_str())]).await;
    let ops = s.ops();
    let (rid, r) = s.user("resident", &[]).await;
    let (_, other) = s.user("resident", &[]).await;

    // Upload: 201 with what was stored.
    let photo = png(1);
    let (st, v) = s
        .post_attachment(Some(&r), Some("image/png"), photo.clone())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            v["content_type"].as_str(),
            v["size"].as_u64(),
            v["sha256"].as_str()
        ),
        (
            Some("image/png"),
            Some(photo.len() as u64),
            Some(common::sha256_hex(&photo).as_str())
        )
    );
    // The same bytes again (someone else's upload) are stored once.
    let (st, v2) = s
        .post_attachment(Some(&other), Some("image/png"), photo.clone())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v2}");
    assert_ne!(v2["id"], v["id"]);
    assert_eq!(v2["sha256"], v["sha256"]);
    let invoice = s.upload(&r, "application/pdf; charset=binary", pdf()).await;
    assert_eq!(files_on_disk(&s), (2, 0), "one file per distinct content");

    // The type is checked against the bytes; only the four types.
    for (ct, body) in [
        ("image/jpeg", photo.clone()),
        ("application/pdf", b"<html>not a pdf</html>".to_vec()),
        ("text/html", b"<html></html>".to_vec()),
        ("image/png", vec![0x89, b'P', b'N']),
    ] {
        let (st, v) = s.post_attachment(Some(&r), Some(ct), body).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {v}");
        Server::assert_error(&v, "unsupported_media_type");
    }
    let (st, v) = s.post_attachment(Some(&r), None, photo.clone()).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let (st, v) = s.post_attachment(Some(&r), Some("image/png"), vec![]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "empty: {v}");
    // Over max_bytes: 413, also past max_body_bytes' 64 KiB default
    // being irrelevant (a body just under the limit is taken).
    let mut big = png(2);
    big.resize(MAX + 1, 0);
    let (st, v) = s
        .post_attachment(Some(&r), Some("image/png"), big.clone())
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    Server::assert_error(&v, "payload_too_large");
    let big = common::png_sized(2, MAX);
    let (st, v) = s.post_attachment(Some(&r), Some("image/png"), big).await;
    assert_eq!(st, StatusCode::CREATED, "exactly max_bytes: {v}");
    // A declared 1 GiB is refused before a byte of it is sent.
    let line = raw_status(
        &s,
        format!(
            "POST /v1/attachments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {r}\r\n\
             Content-Type: image/png\r\nContent-Length: 1073741824\r\n\r\n"
        ),
        &[],
    )
    .await;
    assert!(line.contains(" 413 "), "{line}");
    // Without a token nothing is read or stored.
    let (st, _) = s.post_attachment(None, Some("image/png"), png(3)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(files_on_disk(&s), (3, 0), "refused uploads leave nothing");

    // Served to the uploader with its type, length, ETag, private caching.
    let (st, h, bytes) = s.attachment(&id, &r, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(bytes, photo);
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], photo.len().to_string().as_str());
    assert!(
        h["cache-control"].to_str().unwrap().starts_with("private"),
        "{h:?}"
    );
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", common::sha256_hex(&photo)));
    let (st, _, body) = s.attachment(&id, &r, Some(&etag)).await;
    assert_eq!((st, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (st, h, _) = s.attachment(&invoice, &ops, None).await;
    assert_eq!(
        (st, h["content-type"].to_str().unwrap()),
        (StatusCode::OK, "application/pdf")
    );
    for (who, t) in [
        ("another resident", &other),
        ("a stranger worker", &s.token("w-x", "worker", &[])),
    ] {
        let (st, _, _) = s.attachment(&id, t, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{who}");
    }
    let (st, _, _) = s.attachment("att_nope", &ops, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A job lists its author's own uploads only.
    let mut near = s.worker_online(&["plumbing"], 51.5005, -0.12).await;
    let far = s.worker_online(&["plumbing"], 51.52, -0.12).await;
    let theirs = v2["id"].as_str().unwrap();
    for bad in [
        json!([theirs]),
        json!(["att_missing"]),
        json!([""]),
        json!(vec![id.clone(); 21]),
    ] {
        let (st, v) = s
            .post(
                "/v1/jobs",
                &r,
                json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing", "attachments": bad}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("attachments"),
            "{v}"
        );
    }
    let (st, j) = s
        .post(
            "/v1/jobs",
            &r,
            json!({"lat": 51.5, "lng": -0.12, "skill": "plumbing",
                   "description": "leak under the sink", "attachments": [id, invoice]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    assert_eq!(j["attachments"], json!([id, invoice]));
    assert_eq!(j["resident_id"], rid.as_str());
    let job = j["id"].as_str().unwrap().to_string();
    // The worker it is offered to sees the photo; the other worker not.
    let offer = near.ws.next_of("offer").await;
    assert_eq!(offer["job_id"], job.as_str());
    let (st, _, bytes) = s.attachment(&id, &near.token, None).await;
    assert_eq!((st, bytes == photo), (StatusCode::OK, true));
    let (st, _, _) = s.attachment(&id, &far.token, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // …nor does another resident through the job.
    assert_eq!(
        s.attachment(&invoice, &other, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (st, v) = s
        .post(&format!("/v1/jobs/{job}/accept"), &near.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // kill -9: records and bytes survive. On a cluster the node's own
    // copies are wiped first, so they come back from Redis.
    let cluster = common::redis_backend();
    s.restart_with(|data| {
        if cluster {
            std::fs::remove_dir_all(data.join("attachments")).unwrap();
        }
    })
    .await;
    let (st, h, bytes) = s.attachment(&id, &near.token, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(bytes, photo);
    assert_eq!(h["etag"].to_str().unwrap(), etag);
    let (st, _, bytes) = s.attachment(&invoice, &r, None).await;
    assert_eq!((st, bytes), (StatusCode::OK, pdf()));
    let j: Value = s.job(&job, &r).await;
    assert_eq!(j["attachments"], json!([id, invoice]));
    assert_eq!(
        s.attachment(&id, &other, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(files_on_disk(&s).1, 0, "no temporary file left");
}
