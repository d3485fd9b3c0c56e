//! `peersearch extract`: the crawler's extraction on a local file or stdin, as text or JSON,
//! and a clear error and exit code for what a peer would not index.

use peersearch_tests::harness::binary;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const PAGE: &str = r#"<!doctype html><html lang="en"><head><title>Growing tomatoes</title>
<meta name="description" content="How to grow tomatoes"></head><body>
<header><a href="/">Garden Site</a> <a href="/login">Log in</a></header>
<nav><ul><li><a href="/roses.html">Roses</a></li><li><a href="/herbs.html">Herbs</a></li>
<li><a href="/trees.html">Fruit trees</a></li></ul></nav>
<main><article><h1>Growing tomatoes</h1>
<p>Tomatoes need at least six hours of direct sunlight every day, and soil that drains well.
Plant them deep: the buried stem grows roots that steady the plant.</p>
<p>Water them at the base in the morning, so the leaves dry before evening and blight finds
no foothold. See the <a href="watering.html">watering guide</a> for details.</p>
</article></main>
<footer>Copyright Garden Site. <a href="/privacy">Privacy</a></footer></body></html>"#;

fn extract(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.arg("extract").args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the peersearch binary runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn prints_the_main_text_the_chrome_and_the_links_with_their_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tomatoes.html");
    std::fs::write(&file, PAGE).unwrap();
    let out = extract(
        &[
            "--json",
            "--url",
            "https://garden.example/veg/tomatoes.html",
            file.to_str().unwrap(),
        ],
        None,
    );
    let v = json_of(&out);
    assert_eq!(v["title"], "Growing tomatoes");
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("six hours of direct sunlight"), "{text}");
    assert!(text.contains("blight finds no foothold"), "{text}");
    for chrome in ["Log in", "Fruit trees", "Privacy", "Copyright"] {
        assert!(
            !text.contains(chrome),
            "{chrome:?} in the main text: {text}"
        );
    }
    assert!(v["chrome"].as_str().unwrap().contains("Fruit trees"), "{v}");
    assert_eq!(v["lang"], "en");
    let links: Vec<(String, String)> = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["url"].as_str().unwrap().to_string(),
                l["anchor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        links.contains(&(
            "https://garden.example/veg/watering.html".into(),
            "watering guide".into()
        )),
        "relative links resolve against --url: {links:?}"
    );
    assert!(
        links.contains(&(
            "https://garden.example/trees.html".into(),
            "Fruit trees".into()
        )),
        "menu links are kept: {links:?}"
    );

    // The same bytes on stdin give the same extraction; the text form labels every part.
    let again = extract(
        &[
            "--json",
            "--url",
            "https://garden.example/veg/tomatoes.html",
            "-",
        ],
        Some(PAGE.as_bytes()),
    );
    assert_eq!(json_of(&again), v);
    let text_form = extract(&[file.to_str().unwrap()], None);
    assert!(text_form.status.success());
    let printed = String::from_utf8(text_form.stdout).unwrap();
    for label in ["title: Growing tomatoes", "text (", "chrome (", "links ("] {
        assert!(printed.contains(label), "{label:?} missing:\n{printed}");
    }
}

#[test]
fn a_legacy_charset_is_decoded_as_the_crawler_decodes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cafe.html");
    // windows-1252: 0xE9 is "é", 0x80 is "€".
    let mut bytes = b"<html><head><meta charset=\"windows-1252\"><title>Caf\xe9</title></head>\
        <body><main><p>Un caf\xe9 co\xfbte deux \x80 ici, servi chaud et sans sucre.</p></main></body></html>"
        .to_vec();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&file, &bytes).unwrap();
    let v = json_of(&extract(&["--json", file.to_str().unwrap()], None));
    assert_eq!(v["title"], "Café");
    assert!(
        v["text"].as_str().unwrap().contains("café coûte deux €"),
        "{v}"
    );
    // The server's header wins over the page's own meta, as for the crawler.
    let v = json_of(&extract(
        &[
            "--json",
            "--content-type",
            "text/html; charset=utf-8",
            file.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(
        v["charset"].as_str().unwrap().to_lowercase(),
        "utf-8",
        "{v}"
    );
    assert!(v["text"].as_str().unwrap().contains('\u{FFFD}'), "{v}");
}

#[test]
fn what_a_peer_would_not_index_gets_a_clear_error_and_a_failing_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let binary_file = dir.path().join("image.png");
    std::fs::write(&binary_file, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0").unwrap();
    let big = dir.path().join("big.html");
    let mut f = std::fs::File::create(&big).unwrap();
    f.write_all(b"<html><body><p>").unwrap();
    f.write_all(&vec![b'a'; 6 << 20]).unwrap();
    drop(f);
    let cases: [(&str, &str); 4] = [
        (binary_file.to_str().unwrap(), "binary"),
        (big.to_str().unwrap(), "larger than the crawler's cap"),
        ("/nonexistent/page.html", "cannot open"),
        (dir.path().to_str().unwrap(), "directory"),
    ];
    for (path, says) in cases {
        let out = extract(&["--json", path], None);
        assert!(!out.status.success(), "{path} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{path}: {err:?} does not say {says:?}");
        assert!(out.stdout.is_empty(), "nothing on stdout for {path}");
    }
    let out = extract(&["--url", "not a url", "-"], Some(PAGE.as_bytes()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
}

/// What the crawler indexes for a page equals what `peersearch extract` prints for the same
/// bytes: one peer crawls a fixture page, and its `/api/doc` answer is compared with the
/// command's output for the bytes the server sent, with the server's Content-Type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crawler_indexes_what_extract_prints_for_the_same_bytes() {
    use axum::routing::get;
    use peersearch_tests::fixture::Server;
    use peersearch_tests::harness::{PeerOptions, PeerProcess};
    use std::time::Duration;

    let site = Server::start(
        axum::Router::new()
            .route("/", get(|| async { axum::response::Html(PAGE) }))
            .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" })),
    )
    .await
    .unwrap();
    let url = site.url("/");
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args: vec!["--allow-private-addresses".into()],
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    let (status, body) = peer
        .post_json("/api/crawl", &serde_json::json!({ "urls": [url] }))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    peer.wait_crawl_idle(Duration::from_secs(60)).await.unwrap();
    let q = url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>();
    let indexed: Value = peer.get_json(&format!("/api/doc?url={q}")).await.unwrap();

    let file = dir.path().join("page.html");
    std::fs::write(&file, PAGE).unwrap();
    let printed = json_of(&extract(
        &[
            "--json",
            "--url",
            &url,
            "--content-type",
            "text/html; charset=utf-8",
            file.to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(indexed["title"], printed["title"], "{indexed}");
    assert_eq!(indexed["text"], printed["text"], "{indexed}");
    assert_eq!(indexed["description"], printed["description"], "{indexed}");
    assert_eq!(
        indexed["content_hash"], printed["content_hash"],
        "{indexed}"
    );
    let headings: Vec<&str> = printed["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(indexed["headings"], headings.join("\n"), "{indexed}");
}
