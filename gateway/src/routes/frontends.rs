//! The web front ends, embedded in the binary so that nothing is fetched
//! from anywhere else: the ops console (`GET /ops`, API.md "Ops console",
//! built from `gateway/console/`) and the app for residents and workers
//! (`GET /app`, API.md v1.2, built from `gateway/app/`). Each is a folder of
//! files bundled at build time from the npm lockfile and committed; every
//! file of it is served under its prefix, the folder's `index.html` at the
//! prefix itself. Both talk to the same public API as every other client.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "console/dist/"]
struct Console;

#[derive(RustEmbed)]
#[folder = "app/dist/"]
struct App;

/// Only this origin's scripts, styles and sockets; no framing, no plugins.
const CONSOLE_CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                           img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; \
                           base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's rules, and the app's own service worker and manifest.
const APP_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; \
                       manifest-src 'self'; font-src 'self' data:; base-uri 'self'; \
                       form-action 'self'; frame-ancestors 'none'";

/// The type a browser needs for a file of the bundle, by its extension.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// One embedded file, with its validator and the front end's headers;
/// 404 (the contract's error shape) for a path the bundle lacks.
fn serve(
    file: Option<rust_embed::EmbeddedFile>,
    path: &str,
    csp: &'static str,
    headers: &HeaderMap,
) -> Response {
    let Some(file) = file else {
        return crate::error::ApiError::NotFound("no such file").into_response();
    };
    let tag = format!(
        "\"{}\"",
        crate::wire::hex(&file.metadata.sha256_hash()[..12])
    );
    let tag = HeaderValue::from_str(&tag).expect("hex is a valid header value");
    let mut h: HeaderMap = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, tag.clone()),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
    .into_iter()
    .collect();
    if super::not_modified(headers, &tag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    (h, file.data).into_response()
}

/// `GET /ops`
pub async fn console_page(headers: HeaderMap) -> Response {
    serve(
        Console::get("index.html"),
        "index.html",
        CONSOLE_CSP,
        &headers,
    )
}

/// `GET /ops/{*path}`: a file of the console's bundle.
pub async fn console_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(Console::get(&path), &path, CONSOLE_CSP, &headers)
}

/// `GET /app` and `GET /app/`
pub async fn app_page(headers: HeaderMap) -> Response {
    serve(App::get("index.html"), "index.html", APP_CSP, &headers)
}

/// `GET /app/{*path}`: a file of the app's bundle.
pub async fn app_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let mut r = serve(App::get(&path), &path, APP_CSP, &headers);
    if path == "sw.js" {
        // Registered with scope "/app", one level above the file.
        r.headers_mut().insert(
            header::HeaderName::from_static("service-worker-allowed"),
            HeaderValue::from_static("/app"),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bundles_have_their_page_and_known_types() {
        for name in Console::iter().chain(App::iter()) {
            assert_ne!(
                content_type(&name),
                "application/octet-stream",
                "{name}: no content type for it"
            );
        }
        assert!(Console::get("index.html").is_some());
        assert!(Console::get("app.js").is_some());
        assert!(App::get("index.html").is_some());
    }

    /// The app offers workers triage's skills at sign-up (before it has a
    /// token to ask `/v1/triage/skills`): its copy is the engine's list.
    #[test]
    fn the_app_offers_the_skills_triage_knows() {
        let src = include_str!("../../app/src/skills.ts");
        let array = src.split_once("= [").expect("an array").1;
        let array = array.split_once(']').expect("its end").0;
        let listed: Vec<&str> = array.split('"').skip(1).step_by(2).collect();
        assert_eq!(listed, engine::triage::SKILLS, "gateway/app/src/skills.ts");
    }
}
