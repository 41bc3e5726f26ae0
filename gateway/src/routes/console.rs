//! The ops console (`GET /ops`, API.md "Ops console"): a page and its two
//! assets, built from `gateway/console/` (Leaflet and the land outline
//! bundled there from the npm lockfile) and embedded in the binary, so
//! nothing is fetched from anywhere else. The page signs in with an ops
//! account and talks to the same public API as every other client.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const INDEX: &[u8] = include_bytes!("../../console/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../console/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../console/dist/app.css");

/// Only this origin's script, styles and sockets; no framing, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

fn etag(bytes: &'static [u8], cell: &'static OnceLock<String>) -> &'static str {
    cell.get_or_init(|| {
        let d = Sha256::digest(bytes);
        format!("\"{}\"", crate::wire::hex(&d[..12]))
    })
}

fn asset(
    headers: &HeaderMap,
    bytes: &'static [u8],
    content_type: &'static str,
    cell: &'static OnceLock<String>,
) -> Response {
    let tag = etag(bytes, cell);
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, HeaderValue::from_static(tag)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if super::not_modified(headers, &HeaderValue::from_static(tag)) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response()
}

pub async fn page(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    asset(&headers, INDEX, "text/html; charset=utf-8", &TAG)
}

pub async fn script(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    asset(&headers, APP_JS, "text/javascript; charset=utf-8", &TAG)
}

pub async fn styles(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    asset(&headers, APP_CSS, "text/css; charset=utf-8", &TAG)
}
