//! Helpers shared by the crate's unit tests. Every socket is on 127.0.0.1.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::fetch::{DnsResolver, StandIns};

/// A public address (outside every range the guard refuses) that fake DNS answers give
/// for test names. Nothing is ever dialled there: the guard's test seam dials the
/// stand-in fixture instead (see `fetch::guard::test_seam`).
pub(crate) const PUBLIC_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));

/// Serves `router` on a fresh port of 127.0.0.1; the bound address.
pub(crate) async fn serve_at(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
    addr
}

/// Serves `router` on a fresh port of 127.0.0.1; the base URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(router: Router) -> String {
    format!("http://{}", serve_at(router).await)
}

/// A loopback server that must never be reached: it counts every request it gets (and
/// answers a page, so that reaching it looks like success to the caller).
pub(crate) async fn serve_secret() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { axum::response::Html("<title>secret</title><p>internal</p>") }
    });
    (serve_at(router).await, hits)
}

/// A fake DNS: each name answers its queued answers in turn (the last one repeats);
/// unknown names do not resolve. Counts the lookups per name.
#[derive(Default)]
pub(crate) struct FakeDns {
    answers: Mutex<HashMap<String, VecDeque<Vec<SocketAddr>>>>,
    lookups: Mutex<HashMap<String, usize>>,
}

impl FakeDns {
    /// `name` answers `answers[0]` first, then `answers[1]`, ... (ports 0 mean "the
    /// URL's port").
    pub(crate) fn answer(self: &Arc<Self>, name: &str, answers: Vec<Vec<SocketAddr>>) {
        assert!(!answers.is_empty());
        crate::util::lock(&self.answers).insert(name.to_owned(), answers.into());
    }

    pub(crate) fn lookups(&self, name: &str) -> usize {
        crate::util::lock(&self.lookups)
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn resolver(self: &Arc<Self>) -> DnsResolver {
        DnsResolver(self.clone())
    }
}

impl Resolve for FakeDns {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        *crate::util::lock(&self.lookups)
            .entry(host.clone())
            .or_default() += 1;
        let answer = {
            let mut answers = crate::util::lock(&self.answers);
            answers.get_mut(&host).and_then(|queue| {
                if queue.len() > 1 {
                    queue.pop_front()
                } else {
                    queue.front().cloned()
                }
            })
        };
        Box::pin(async move {
            match answer {
                Some(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                None => Err(format!("fake dns: no such name {host}").into()),
            }
        })
    }
}

/// The DNS answer `ip` (port from the URL).
pub(crate) fn at(ip: IpAddr) -> Vec<SocketAddr> {
    vec![SocketAddr::new(ip, 0)]
}

/// Stand-ins that dial `fixture` whenever the guard lets [`PUBLIC_IP`] through.
pub(crate) fn public_stand_in(fixture: SocketAddr) -> StandIns {
    StandIns::new([(PUBLIC_IP, fixture)])
}

/// Waits until `cond` holds, polling; panics after `limit` (a hang, not a timing
/// assertion: the condition normally holds within milliseconds).
pub(crate) async fn wait_until<F, Fut>(limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::time::timeout(limit, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition not reached in time");
}
