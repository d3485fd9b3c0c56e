//! One peer, end to end: crawl a hostile fixture site over real HTTP on loopback, index it,
//! and search it through the JSON API, the web page and the CLI.

use peersearch_tests::fixture::{
    self, BombMeter, FetchLog, PlainSite, Server, TRAP_EXPECTED, TRAP_FORBIDDEN, TRAP_PAGES,
    TRAP_SITE, TrapSite,
};
use peersearch_tests::harness::{PeerOptions, PeerProcess, binary, http_get};
use serde_json::{Value, json};
use std::time::Duration;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Flags that make a test crawl fast and bounded (the politeness rate is raised because the
/// fixture is ours).
fn fast_crawl(seed: &str) -> Vec<String> {
    args(&[
        "--allow-private-addresses",
        "--crawl-rate",
        "500",
        "--fetch-timeout-secs",
        "3",
        "--max-depth",
        "12",
        "--replication",
        "1",
        "--seed",
        seed,
    ])
}

async fn local_urls(p: &PeerProcess, q: &str) -> Vec<String> {
    p.search_urls(q, "&scope=local&limit=100").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_of_hostile_site_ends_with_exactly_the_expected_pages() {
    let robots500 = Server::start(fixture::robots_500_router()).await.unwrap();
    let bomb = BombMeter::default();
    let trap = Server::start(
        TrapSite {
            robots_500_site: robots500.url(""),
            other_port_url: robots500.url("/a.html"),
            bomb: bomb.clone(),
        }
        .router(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args: fast_crawl(&trap.url("/")),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();

    let st = peer
        .wait_crawl_idle(Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log_tail()));

    // Every generated page and every expected special page is searchable.
    for n in 0..TRAP_PAGES {
        let m = fixture::marker(TRAP_SITE, n);
        let urls = local_urls(&peer, &m).await;
        assert_eq!(
            urls,
            vec![trap.url(&format!("/page/{n}.html"))],
            "page {n} must be found exactly once"
        );
    }
    for (path, word) in TRAP_EXPECTED {
        assert_eq!(
            local_urls(&peer, word).await,
            vec![trap.url(path)],
            "{path} must be searchable by {word}"
        );
    }
    // None of the forbidden ones, nothing of the site whose robots.txt fails.
    for (path, word) in TRAP_FORBIDDEN {
        assert!(
            local_urls(&peer, word).await.is_empty(),
            "{path} must not be indexed"
        );
    }
    assert!(
        local_urls(&peer, "robotsfivehundredmarker")
            .await
            .is_empty()
    );
    // The endless calendar is cut by the trap defences (depth), not crawled forever.
    let calendar = local_urls(&peer, "calendartrap").await;
    assert!(
        !calendar.is_empty() && calendar.len() <= 13,
        "calendar pages bounded by max depth: {}",
        calendar.len()
    );
    let expected = (TRAP_PAGES + TRAP_EXPECTED.len() + calendar.len()) as u64;
    assert_eq!(
        st["docs_indexed"], expected,
        "exactly the expected pages: {st}"
    );
    assert!(
        st["pages_failed"].as_u64().unwrap() >= 3,
        "404s, bomb, huge, stall fail: {st}"
    );

    // The gzip bomb (64 MiB on the wire, about 10 GiB inflated) was fetched and given up
    // early: the server got to hand over only what the socket buffers take beyond the few
    // dozen KiB that inflate to the body cap, far below the whole bomb, on every request.
    let (asked, sent) = (bomb.requests(), bomb.bytes_sent());
    eprintln!(
        "gzip bomb: {asked} request(s), {sent} bytes sent in all, of {} per request; peak RSS {:?} KiB",
        BombMeter::WIRE_BYTES,
        peer.peak_rss_kib()
    );
    assert!(asked >= 1, "the crawler never asked for the bomb");
    assert!(
        sent < u64::from(asked) * (BombMeter::WIRE_BYTES / 4),
        "the crawler read on into the bomb: {sent} bytes sent over {asked} request(s) of {}",
        BombMeter::WIRE_BYTES
    );

    // The crawled <script> title is shown as text on the results page.
    let (status, page) = http_get(&format!("{}/search?q=scripttitlemarker", peer.base))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        !page.contains("<script>alert(1)"),
        "crawled script must be escaped"
    );
}

/// The SSRF guard end to end: a peer started without `--allow-private-addresses` is handed
/// loopback URLs of a live fixture in four spellings (IPv4 literal, a name that resolves to
/// loopback, the IPv4 address as one decimal number, IPv4-mapped IPv6) and the fixture never
/// sees a request, not even for robots.txt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_guard_refuses_loopback_destinations_without_the_flag() {
    let log = FetchLog::default();
    let site = Server::start(
        log.wrap(
            PlainSite {
                site: 7,
                pages: 5,
                home_links: String::new(),
            }
            .router(),
        ),
    )
    .await
    .unwrap();
    let port = site.addr.port();
    let seeds = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args: args(&["--crawl-rate", "100", "--fetch-timeout-secs", "3"]),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    let (status, body) = peer
        .post_json("/api/crawl", &json!({ "urls": seeds }))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let rejected = v["rejected"].as_array().cloned().unwrap_or_default();
    for r in &rejected {
        assert!(
            r["reason"].as_str().is_some_and(|s| !s.is_empty()),
            "a refusal says why: {r}"
        );
    }
    let accepted = v["accepted"].as_u64().unwrap();
    assert_eq!(
        accepted + rejected.len() as u64,
        seeds.len() as u64,
        "every seed is accepted or refused: {v}"
    );
    // What was accepted (names are only resolved at fetch time) must fail at the fetch.
    let st = peer
        .wait_status(Duration::from_secs(60), |st| {
            st["pages_failed"].as_u64() >= Some(accepted)
                && st["frontier_size"] == 0
                && st["crawl_in_flight"] == 0
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log_tail()));
    assert_eq!(
        log.total(),
        0,
        "the guard let requests through: {:?}",
        log.fetches()
    );
    assert_eq!(
        st["docs_indexed"], 0,
        "nothing on loopback is indexed: {st}"
    );
    assert!(local_urls(&peer, &fixture::marker(7, 0)).await.is_empty());

    // The control: with the flag, the same fixture is crawled and its log counts it, so the
    // zero above is the guard's doing.
    let open = PeerProcess::spawn(
        &dir.path().join("open"),
        &PeerOptions {
            args: fast_crawl(&seeds[0]),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    open.wait_crawl_idle(Duration::from_secs(60)).await.unwrap();
    assert!(log.count("/") >= 1, "the control peer fetched the fixture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_peer_resumes_without_losing_or_duplicating_documents() {
    const PAGES: usize = 150;
    let site = Server::start(
        PlainSite {
            site: 3,
            pages: PAGES,
            home_links: String::new(),
        }
        .router(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let mut opts = PeerOptions {
        args: fast_crawl(&site.url("/")),
        ..PeerOptions::default()
    };
    // Slow enough that the kill lands mid-crawl.
    let rate = opts.args.iter().position(|a| a == "--crawl-rate").unwrap();
    opts.args[rate + 1] = "20".into();
    let mut peer = PeerProcess::spawn(&data, &opts).await.unwrap();
    let before = peer
        .wait_status(Duration::from_secs(120), |st| {
            st["docs_indexed"].as_u64() >= Some(30)
        })
        .await
        .unwrap();
    let committed = before["docs_indexed"].as_u64().unwrap();
    peer.kill9();

    // Restart on the same data dir, without the seed: it must resume from its own state.
    let peer = PeerProcess::spawn(
        &data,
        &PeerOptions {
            args: args(&["--allow-private-addresses", "--crawl-rate", "500"]),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    let after_start: Value = peer.get_json("/api/status").await.unwrap();
    assert!(
        after_start["docs_indexed"].as_u64().unwrap() >= committed,
        "no committed document lost: {after_start} vs {committed}"
    );
    let st = peer
        .wait_crawl_idle(Duration::from_secs(180))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log_tail()));
    assert_eq!(
        st["docs_indexed"],
        (PAGES + 1) as u64,
        "every page once: {st}"
    );
    for n in 0..PAGES {
        let urls = local_urls(&peer, &fixture::marker(3, n)).await;
        assert_eq!(urls.len(), 1, "page {n} indexed exactly once: {urls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_inputs_get_their_errors_and_cli_prints_results() {
    let site = Server::start(
        PlainSite {
            site: 5,
            pages: 10,
            home_links: String::new(),
        }
        .router(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args: fast_crawl(&site.url("/")),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    peer.wait_crawl_idle(Duration::from_secs(120))
        .await
        .unwrap();

    let long = "x".repeat(2048);
    let cases: Vec<(String, u16)> = vec![
        ("/api/search?q=".into(), 400),
        ("/api/search?q=%20%20".into(), 400),
        (format!("/api/search?q={long}"), 400),
        ("/api/search?q=a&limit=0".into(), 400),
        ("/api/search?q=a&limit=1e9".into(), 400),
        ("/api/search?q=a&offset=1001".into(), 400),
        ("/api/search?q=a&timeout_ms=1".into(), 400),
        ("/api/search?q=a&scope=galaxy".into(), 400),
        ("/api/search?q=a:(%5E".into(), 200),
        ("/api/search?q=%22unbalanced%20quote".into(), 200),
        ("/api/search?q=((((%20-%20%2B".into(), 400),
    ];
    for (path, want) in cases {
        let (status, body) = http_get(&format!("{}{}", peer.base, path)).await.unwrap();
        assert_eq!(status, want, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("json: {body}"));
        if want != 200 {
            assert!(v["error"]["code"].is_string(), "{path}: {v}");
            assert!(v["error"]["message"].is_string(), "{path}: {v}");
        }
    }
    // A 3 MiB body is refused with 413 as soon as its declared length is read, like curl
    // sees it. (reqwest, still writing the body when the server answers and closes, reports
    // the broken write instead of the answer, so this speaks HTTP/1.1 by hand.)
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = peer.base.trim_start_matches("http://").to_string();
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/crawl HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            3 << 20
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let _ = conn.write_all(&vec![b'x'; 64 * 1024]).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
    // A foreign Host header is refused while bound to loopback (DNS rebinding).
    let r = reqwest::Client::new()
        .get(format!("{}/api/status", peer.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a foreign Host is forbidden");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "forbidden_host", "{v}");
    // The peer is still healthy after all of it.
    let hits = peer.search_urls(&fixture::marker(5, 3), "").await.unwrap();
    assert_eq!(hits, vec![site.url("/page/3.html")]);

    // `peersearch search` prints the results.
    let out = tokio::process::Command::new(binary())
        .args(["search", &fixture::marker(5, 3), "--node", &peer.base])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&site.url("/page/3.html")), "{text}");
    let out = tokio::process::Command::new(binary())
        .args([
            "search",
            "--json",
            &fixture::marker(5, 3),
            "--node",
            &peer.base,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hits"][0]["url"], site.url("/page/3.html"));
    let out = tokio::process::Command::new(binary())
        .args(["status", "--node", &peer.base])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("documents   11"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let first = PeerProcess::spawn(&data, &PeerOptions::default())
        .await
        .unwrap();
    let out = tokio::process::Command::new(binary())
        .args([
            "start",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "the second process must exit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another peersearch process"),
        "{err}"
    );
    // The first one is unharmed.
    let st: Value = first.get_json("/api/status").await.unwrap();
    assert_eq!(st["docs_indexed"], 0);
}
