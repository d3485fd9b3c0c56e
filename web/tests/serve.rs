//! `serve` over a real socket: raw HTTP/1.1 answers, the `Host` check, graceful shutdown.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{FakeBackend, PEER_ID, assert_error_shape, config, plain_hits};
use peersearch_web::{StatusResponse, WebConfig, app};

/// Longest a test waits for the server (a safety net, not a measured time).
const PATIENCE: Duration = Duration::from_secs(10);

/// A parsed HTTP/1.1 response.
struct RawReply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// One raw HTTP/1.1 request over TCP (`Connection: close`); the whole response, parsed.
async fn raw_request(addr: SocketAddr, request: String) -> RawReply {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8(out).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("end of headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: HashMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "a sized body is expected: {head}"
    );
    let length: usize = headers["content-length"].parse().unwrap();
    assert_eq!(body.len(), length, "the whole body arrived");
    RawReply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get_request(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn serve_answers_over_tcp_and_shuts_down_gracefully() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = Arc::new(FakeBackend::new(plain_hits(1)));
    let router = app(
        backend,
        WebConfig {
            bound_addr: addr,
            ..config()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(peersearch_web::serve(listener, router, async {
        let _ = stopped.await;
    }));

    let ok = raw_request(addr, get_request(&addr.to_string(), "/api/status")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let status: StatusResponse = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(status.peer_id, PEER_ID);

    let refused = raw_request(addr, get_request("evil.example", "/api/status")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        assert_error_shape(&refused.headers["content-type"], &refused.body),
        "forbidden_host"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("server stops in time")
        .unwrap()
        .unwrap();
}

/// Over a real socket the client address is the TCP peer's: a proxy on 127.0.0.1 listed as
/// trusted gets its `X-Forwarded-Proto` believed; with a public URL its host passes the Host
/// check and is the base of the OpenSearch templates.
#[tokio::test]
async fn forwarded_proto_from_a_trusted_proxy_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve_with = |listener, config: WebConfig| {
        let router = app(Arc::new(FakeBackend::new(plain_hits(1))), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(peersearch_web::serve(listener, router, async {
            let _ = stopped.await;
        }));
        (stop, server)
    };
    let base = WebConfig {
        bound_addr: addr,
        ..config()
    };
    let request = |host: &str, extra: &str| {
        format!("GET /opensearch.xml HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
    };
    let host = addr.to_string();
    let proto = "X-Forwarded-Proto: https\r\n";

    let (stop, server) = serve_with(
        listener,
        base.clone()
            .with_trusted_proxies(vec!["127.0.0.1".parse().unwrap()]),
    );
    let reply = raw_request(addr, request(&host, proto)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains(&format!(
            "template=\"https://{host}/search?q={{searchTerms}}\""
        )),
        "{}",
        reply.body
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    // Not trusted (another address is): the header is ignored.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let host = addr.to_string();
    let (stop, server) = serve_with(
        listener,
        base.clone()
            .with_trusted_proxies(vec!["192.0.2.1".parse().unwrap()]),
    );
    let reply = raw_request(addr, request(&host, proto)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains(&format!(
            "template=\"http://{host}/search?q={{searchTerms}}\""
        )),
        "{}",
        reply.body
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    // A public URL: a proxy that passes the public Host on (Caddy) is admitted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, server) = serve_with(
        listener,
        base.with_public_url(Some("https://search.example.org/".to_owned())),
    );
    let reply = raw_request(addr, request("search.example.org", "")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("template=\"https://search.example.org/search?q={searchTerms}\""),
        "{}",
        reply.body
    );
    let refused = raw_request(addr, request("evil.example", "")).await;
    assert_eq!(refused.status, 403);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
