//! A read-only static file server: serves a directory (the demo's corpus, test fixtures such as
//! the Rust documentation that rustup installs) with a content type chosen by extension.

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Serve the files under `root` (read-only; a path with a `..` segment is refused; a directory
/// serves its `index.html`).
pub fn static_dir(root: PathBuf) -> Router {
    let root = Arc::new(root);
    let serve = move |path: Option<UrlPath<String>>| {
        let root = root.clone();
        async move { serve_file(&root, path.map(|UrlPath(p)| p).unwrap_or_default()).await }
    };
    Router::new()
        .route("/", get(serve.clone()))
        .route("/{*path}", get(serve))
}

async fn serve_file(root: &Path, rel: String) -> Response {
    if rel.split('/').any(|seg| seg == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let mut file = root.join(&rel);
    if rel.is_empty()
        || rel.ends_with('/')
        || tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir())
    {
        file = file.join("index.html");
    }
    let ctype = match file.extension().and_then(|e| e.to_str()) {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, ctype)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The HTML documentation rustup installs (`$(rustc --print sysroot)/share/doc/rust/html`), if
/// present on this machine (`rustup component add rust-docs` installs it).
pub fn rust_docs_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()).join("share/doc/rust/html");
    dir.join("book/index.html").exists().then_some(dir)
}
