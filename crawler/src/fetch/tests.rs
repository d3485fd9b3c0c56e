//! Tests of the fetcher: redirects, caps, compression bombs, deadlines, and the SSRF
//! guard reached through the test seam (a fake DNS answering a public address, dialled
//! at a loopback stand-in once the guard let it through).

use super::*;
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;

use crate::test_util::{FakeDns, PUBLIC_IP, at, public_stand_in, serve, serve_at, serve_secret};

/// Body cap of the bomb tests: small, so the ratio of the bombs below is large.
const BOMB_CAP: usize = 1024 * 1024;

/// Bytes a fetch may decompress past the cap before it notices: one chunk of reqwest's
/// decoder (tower-http reads 4 KiB at a time; the margin leaves room for a change).
const DECODER_CHUNK_SLACK: u64 = 64 * 1024;

/// 64 MiB of zeros as brotli (quality 11, window 24: the `brotli` crate 9.1.1's
/// `CompressorWriter`), 54 bytes. No brotli encoder is a dependency, so the bytes are
/// written out here.
const BROTLI_BOMB_64_MIB: &str = "cfffff7ff82700e2b14020f7fe9ffffffff04f00c4610180eefd3fffffffe19f0088c32200ddfb7ffeffffc33f0110870500baf7ff03";

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn gzip_of_zeros(len: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        enc.write_all(&zeros[..n]).unwrap();
        left -= n;
    }
    enc.finish().unwrap()
}

fn encoded(encoding: &'static str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_ENCODING, encoding.parse().unwrap());
    headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
    (headers, body).into_response()
}

fn test_router() -> Router {
    Router::new()
        .route(
            "/ok",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::HeaderName::from_static("x-robots-tag"), "noarchive"),
                    ],
                    "<title>ok</title>",
                )
            }),
        )
        .route(
            "/chain/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    Redirect::temporary("/ok").into_response()
                } else {
                    Redirect::permanent(&format!("/chain/{}", n - 1)).into_response()
                }
            }),
        )
        .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
        .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
        .route(
            "/to-mailto",
            get(|| async { Redirect::temporary("mailto:a@example.com") }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/big",
            get(|| async {
                // Streamed without Content-Length so the streaming cap does the work.
                let chunk = Bytes::from(vec![b'a'; 1024 * 1024]);
                let stream = futures::stream::iter(
                    (0..20).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                Body::from_stream(stream)
            }),
        )
        .route(
            "/big-declared",
            get(|| async { vec![b'a'; 6 * 1024 * 1024] }),
        )
        .route(
            "/gzip-bomb",
            get(|| async { encoded("gzip", gzip_of_zeros(50 * 1024 * 1024)) }),
        )
        .route(
            "/brotli-bomb",
            get(|| async { encoded("br", hex_bytes(BROTLI_BOMB_64_MIB)) }),
        )
        .route(
            "/stall",
            get(|| async {
                let first = futures::stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from_static(b"<html>"))
                });
                let stream = futures::StreamExt::chain(first, futures::stream::pending());
                Response::new(Body::from_stream(stream))
            }),
        )
}

fn fetcher(allow_private: bool) -> Fetcher {
    Fetcher::new(FetchConfig {
        allow_private_addresses: allow_private,
        request_timeout: Duration::from_secs(10),
        ..FetchConfig::default()
    })
    .unwrap()
}

/// The error of fetching `path` from a fresh test server (private addresses allowed).
async fn fetch_err(path: &str) -> Error {
    let base = serve(test_router()).await;
    fetcher(true)
        .fetch(&url(&format!("{base}{path}")))
        .await
        .unwrap_err()
}

fn url(s: &str) -> NormalizedUrl {
    normalize(s, None).unwrap()
}

#[tokio::test]
async fn guard_refuses_loopback_literal_by_default() {
    let base = serve(test_router()).await;
    let err = fetcher(false)
        .fetch(&url(&format!("{base}/ok")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Blocked(_)), "{err:?}");
}

#[tokio::test]
async fn guard_refuses_hostname_resolving_to_loopback() {
    let base = serve(test_router()).await;
    let port = base.rsplit(':').next().unwrap();
    let err = fetcher(false)
        .fetch(&url(&format!("http://localhost:{port}/ok")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Blocked(_)), "{err:?}");
}

#[tokio::test]
async fn guard_allows_private_addresses_when_configured() {
    let base = serve(test_router()).await;
    let port = base.rsplit(':').next().unwrap();
    let f = fetcher(true);
    let res = f.fetch(&url(&format!("{base}/ok"))).await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(&res.body[..], b"<title>ok</title>");
    assert_eq!(
        res.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(res.x_robots_tag, vec!["noarchive".to_owned()]);
    assert!(res.redirects.is_empty());
    let res = f
        .fetch(&url(&format!("http://localhost:{port}/ok")))
        .await
        .unwrap();
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn follows_a_redirect_chain() {
    let base = serve(test_router()).await;
    let res = fetcher(true)
        .fetch(&url(&format!("{base}/chain/3")))
        .await
        .unwrap();
    assert_eq!(res.final_url.as_str(), format!("{base}/ok"));
    let hops: Vec<String> = res.redirects.iter().map(|u| u.to_string()).collect();
    assert_eq!(
        hops,
        vec![
            format!("{base}/chain/2"),
            format!("{base}/chain/1"),
            format!("{base}/chain/0"),
            format!("{base}/ok"),
        ]
    );
}

#[tokio::test]
async fn ten_redirects_are_followed_eleven_are_refused() {
    let base = serve(test_router()).await;
    let f = fetcher(true);
    // /chain/9 makes 10 redirects in all (9..0, then /ok).
    let res = f.fetch(&url(&format!("{base}/chain/9"))).await.unwrap();
    assert_eq!(res.redirects.len(), 10);
    let err = f
        .fetch(&url(&format!("{base}/chain/10")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyRedirects), "{err:?}");
}

#[tokio::test]
async fn redirect_loop_stops() {
    let err = fetch_err("/loop/a").await;
    assert!(matches!(err, Error::RedirectLoop(_)), "{err:?}");
}

#[tokio::test]
async fn redirect_to_other_scheme_is_refused() {
    let err = fetch_err("/to-mailto").await;
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
}

#[tokio::test]
async fn non_2xx_is_an_http_error() {
    let err = fetch_err("/missing").await;
    assert!(matches!(err, Error::Http(404)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(Error::Http(503).is_retryable());
}

#[tokio::test]
async fn streamed_body_over_the_cap_is_too_large() {
    let err = fetch_err("/big").await;
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    let err = fetch_err("/big-declared").await;
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn truncating_fetch_keeps_the_first_bytes() {
    let base = serve(test_router()).await;
    let res = fetcher(true)
        .fetch_limited(
            &url(&format!("{base}/big")),
            1000,
            Overflow::Truncate,
            no_gate,
        )
        .await
        .unwrap();
    assert_eq!(res.body.len(), 1000);
}

#[tokio::test]
async fn stalling_server_hits_the_deadline() {
    let base = serve(test_router()).await;
    let f = Fetcher::new(FetchConfig {
        allow_private_addresses: true,
        request_timeout: Duration::from_millis(300),
        ..FetchConfig::default()
    })
    .unwrap();
    let err = f.fetch(&url(&format!("{base}/stall"))).await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
}

#[test]
fn user_agent_names_the_crate_version() {
    let ua = default_user_agent();
    assert!(ua.starts_with("peersearch/"));
    assert!(ua.contains(env!("CARGO_PKG_VERSION")));
}

fn bomb_fetcher() -> Fetcher {
    Fetcher::new(FetchConfig {
        allow_private_addresses: true,
        request_timeout: Duration::from_secs(30),
        max_body_bytes: BOMB_CAP,
        ..FetchConfig::default()
    })
    .unwrap()
}

/// The fetch of `path` fails as too large, and what it decompressed (counted by the
/// fetcher itself) passed the cap by at most one decoder chunk.
async fn assert_bomb_stops_at_the_cap(path: &str) {
    let base = serve(test_router()).await;
    let f = bomb_fetcher();
    let err = f.fetch(&url(&format!("{base}{path}"))).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit } if limit == BOMB_CAP),
        "{err:?}"
    );
    let read = f.body_bytes_read();
    assert!(read > BOMB_CAP as u64, "only {read} bytes decompressed");
    assert!(
        read <= BOMB_CAP as u64 + DECODER_CHUNK_SLACK,
        "{read} bytes decompressed for a cap of {BOMB_CAP}"
    );
}

#[tokio::test]
async fn gzip_bomb_stops_at_the_cap() {
    assert!(gzip_of_zeros(50 * 1024 * 1024).len() < 200 * 1024);
    assert_bomb_stops_at_the_cap("/gzip-bomb").await;
}

#[tokio::test]
async fn brotli_bomb_stops_at_the_cap() {
    assert_eq!(hex_bytes(BROTLI_BOMB_64_MIB).len(), 54);
    assert_bomb_stops_at_the_cap("/brotli-bomb").await;
}

#[tokio::test]
async fn brotli_bomb_really_expands_to_64_mib() {
    // The control of the test above: under a cap above its size, the bomb decodes whole.
    let base = serve(test_router()).await;
    let res = bomb_fetcher()
        .fetch_limited(
            &url(&format!("{base}/brotli-bomb")),
            65 * 1024 * 1024,
            Overflow::Fail,
            no_gate,
        )
        .await
        .unwrap();
    assert_eq!(res.body.len(), 64 * 1024 * 1024);
    assert!(res.body.iter().all(|b| *b == 0));
}

#[tokio::test]
async fn gate_is_asked_about_every_redirect_target_before_it_is_fetched() {
    let base = serve(test_router()).await;
    let asked = std::sync::Mutex::new(Vec::new());
    let err = fetcher(true)
        .fetch_gated(&url(&format!("{base}/chain/2")), |hop| {
            asked.lock().unwrap().push(hop.to_string());
            let refuse = hop.as_url().path() == "/chain/0";
            async move {
                match refuse {
                    true => Err(Error::RobotsDisallowed(hop.to_string())),
                    false => Ok(()),
                }
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RobotsDisallowed(_)), "{err:?}");
    assert_eq!(
        asked.into_inner().unwrap(),
        vec![format!("{base}/chain/1"), format!("{base}/chain/0")]
    );
}

/// A fetcher with the guard on, names resolved by `dns`, and `fixture` dialled in
/// place of [`PUBLIC_IP`] once the guard has let that address through.
fn guarded_fetcher(dns: &Arc<FakeDns>, fixture: SocketAddr) -> Fetcher {
    Fetcher::new(FetchConfig {
        allow_private_addresses: false,
        request_timeout: Duration::from_secs(10),
        resolver: Some(dns.resolver()),
        stand_ins: public_stand_in(fixture),
        ..FetchConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn guard_lets_a_public_answer_through_to_its_stand_in() {
    let fixture = serve_at(test_router()).await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("allowed.test", vec![at(PUBLIC_IP)]);
    let res = guarded_fetcher(&dns, fixture)
        .fetch(&url("http://allowed.test/ok"))
        .await
        .unwrap();
    assert_eq!(&res.body[..], b"<title>ok</title>");
    assert_eq!(dns.lookups("allowed.test"), 1);
}

#[tokio::test]
async fn guard_refuses_redirects_from_an_allowed_site_to_loopback() {
    let (secret, secret_hits) = serve_secret().await;
    let port = secret.port();
    let targets: Vec<String> = vec![
        format!("http://127.0.0.1:{port}/"),
        "http://2130706433/".into(),
        format!("http://2130706433:{port}/"),
        "http://0177.0.0.1/".into(),
        format!("http://0177.0.0.1:{port}/"),
        "http://[::ffff:127.0.0.1]/".into(),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        // A name, not a literal: refused on its DNS answer.
        "http://internal.test/".into(),
    ];
    let go_hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route(
        "/go/{n}",
        get({
            let (targets, go_hits) = (targets.clone(), go_hits.clone());
            move |Path(n): Path<usize>| {
                go_hits.fetch_add(1, Ordering::SeqCst);
                let target = targets[n].clone();
                async move { Redirect::temporary(&target) }
            }
        }),
    );
    let fixture = serve_at(router).await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("allowed.test", vec![at(PUBLIC_IP)]);
    dns.answer("internal.test", vec![vec![secret]]);
    let f = guarded_fetcher(&dns, fixture);
    for (n, target) in targets.iter().enumerate() {
        let err = f
            .fetch(&url(&format!("http://allowed.test/go/{n}")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Blocked(_)),
            "redirect to {target}: {err:?}"
        );
    }
    assert_eq!(go_hits.load(Ordering::SeqCst), targets.len());
    assert_eq!(dns.lookups("internal.test"), 1);
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn guard_refuses_a_name_that_rebinds_to_loopback() {
    let (secret, secret_hits) = serve_secret().await;
    let hop_hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route(
        "/hop",
        get({
            let hop_hits = hop_hits.clone();
            move || {
                hop_hits.fetch_add(1, Ordering::SeqCst);
                // Closing the connection makes the next request connect (and resolve)
                // again, as a rebinding attacker needs.
                async {
                    (
                        [(header::CONNECTION, "close")],
                        Redirect::temporary("/landing"),
                    )
                }
            }
        }),
    );
    let fixture = serve_at(router).await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("rebind.test", vec![at(PUBLIC_IP), vec![secret]]);
    let err = guarded_fetcher(&dns, fixture)
        .fetch(&url("http://rebind.test/hop"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Blocked(_)), "{err:?}");
    assert_eq!(hop_hits.load(Ordering::SeqCst), 1, "first answer served");
    assert_eq!(dns.lookups("rebind.test"), 2, "second connection resolved");
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}
