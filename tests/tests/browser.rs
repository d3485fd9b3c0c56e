//! The web UI in a real headless Chromium, driven over the DevTools protocol: search from the
//! home page with the keyboard, page through the results, see a hostile crawled title shown as
//! text, open a result's cached text (hostile markup in it shown as text, never run), read
//! the peer page and add a seed URL with its form. Saves screenshots on the way
//! (into `docs/` with `PEERSEARCH_UPDATE_SCREENSHOTS=1`).
//!
//! Needs Debian's `chromium` at `/usr/bin/chromium` (`apt-get install -y chromium`): without
//! it the test fails, unless `PEERSEARCH_SKIP_BROWSER=1` says to skip it on purpose.

use chromiumoxide::cdp::browser_protocol::emulation::{
    ClearDeviceMetricsOverrideParams, SetDeviceMetricsOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventJavascriptDialogOpening,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use peersearch_tests::fixture::{self, PlainSite, Rng, Server};
use peersearch_tests::harness::{PeerProcess, start_network, wait_network_idle};
use peersearch_tests::need;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Desktop viewport of the screenshots in `docs/`.
const DESKTOP: (u32, u32) = (1280, 900);
/// Phone viewport of the optional narrow screenshot (an iPhone 12-14 in CSS pixels).
const PHONE: (u32, u32) = (390, 844);
/// Longest wait for one browser step (a command, a navigation, a condition on the page).
/// Generous: two cores shared with other builds make Chromium slow at times.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a crawl (the fixtures are small; the crawl rate is raised for them).
const CRAWL_TIMEOUT: Duration = Duration::from_secs(180);
/// Uptime after which the peer's activity history holds a sample taken after the crawls (the
/// node samples every 10 s, the first time at start; the crawls take a few seconds).
const HISTORY_WAIT_S: u64 = 12;
/// How often a condition on the page is polled.
const POLL: Duration = Duration::from_millis(100);

/// Pages of the fixture site; every one contains [`COMMON_WORD`], so its search has 4 pages.
const PAGES: usize = 40;
/// The word on every fixture page (and only there).
const COMMON_WORD: &str = "lighthouse";
/// The title of the hostile page, as markup (the browser must show it as text).
const HOSTILE_TITLE: &str = "<img src=x onerror=alert(1)>";
/// Text of the hostile page that would run script if it reached a page as markup: each
/// sets a marker on `window` (the test checks it stays unset).
const HOSTILE_TEXT: &str =
    "<img src=x onerror=\"window.__pwned=1\"> <script>window.__pwned=2</script>";
/// The site index of the second fixture site, added through the seed form.
const SEEDED_SITE: usize = 7;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A fixture page: a title, text with the common word (a varying number of times, so the
/// ranking is not a tie) and a link on to the next page.
fn lighthouse_page(n: usize) -> String {
    let mut rng = Rng::new(1000 + n as u64);
    let title = format!("Lighthouse log {n}: {} {}", rng.word(), rng.word());
    let extra = " lighthouse".repeat(n % 4);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{} {COMMON_WORD} {}.</p><p>{}{extra}.</p>\
         <p><a href=\"/page/{}.html\">next log</a></p></body></html>",
        rng.words(12),
        rng.words(16),
        rng.words(24),
        (n + 1) % PAGES,
    )
}

/// The fixture site: a home page linking to [`PAGES`] pages, the hostile page and a missing
/// page (a 404, so the peer page has a crawl error to list).
fn lighthouse_site() -> axum::Router {
    use axum::response::Html;
    use axum::routing::get;
    let mut links = String::new();
    for n in 0..PAGES {
        links.push_str(&format!("<li><a href=\"/page/{n}.html\">log {n}</a></li>"));
    }
    let home = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Harbour logs</title></head>\
         <body><h1>Harbour logs</h1><ul>{links}</ul><p><a href=\"/hostile.html\">odd title</a> \
         <a href=\"/missing.html\">gone</a></p></body></html>"
    );
    // A <title> is raw text: the parser reads this one as the literal text of HOSTILE_TITLE.
    let hostile = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{HOSTILE_TITLE}</title></head>\
         <body><p>This page has markup for a title: img src onerror alert, hostilemarker.</p>\
         <p>{}</p><script>window.__pwned=3</script></body></html>",
        escape_text(HOSTILE_TEXT)
    );
    axum::Router::new()
        .route("/", get(move || async move { Html(home) }))
        .route(
            "/page/{file}",
            get(
                |axum::extract::Path(file): axum::extract::Path<String>| async move {
                    match file
                        .strip_suffix(".html")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        Some(n) if n < PAGES => Ok(Html(lighthouse_page(n))),
                        _ => Err(axum::http::StatusCode::NOT_FOUND),
                    }
                },
            ),
        )
        .route("/hostile.html", get(move || async move { Html(hostile) }))
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
}

/// `s` as HTML text (so the crawled page's text is the markup itself).
fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Run `fut` for at most [`STEP_TIMEOUT`]; errors name the step.
async fn step<T, E>(what: &str, fut: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::fmt::Display,
{
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => anyhow::bail!("{what}: {e}"),
        Err(_) => anyhow::bail!("{what}: timed out after {STEP_TIMEOUT:?}"),
    }
}

/// Evaluate a JavaScript expression in the page and deserialize its value.
async fn eval<T: DeserializeOwned>(page: &Page, js: &str) -> anyhow::Result<T> {
    let result = step(js, page.evaluate_expression(js)).await?;
    Ok(result.into_value()?)
}

/// Poll the JavaScript condition `js` until it is true (bounded by [`STEP_TIMEOUT`]). Errors
/// while a navigation replaces the document count as "not yet".
async fn wait_for(page: &Page, what: &str, js: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let guarded = format!("document.readyState === 'complete' && !!({js})");
    loop {
        if let Ok(true) = eval::<bool>(page, &guarded).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            let url = eval::<String>(page, "location.href")
                .await
                .unwrap_or_default();
            let text = eval::<String>(page, "document.body.innerText.slice(0, 2000)")
                .await
                .unwrap_or_default();
            anyhow::bail!("{what}: not seen within {STEP_TIMEOUT:?} (page at {url}: {text})");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Open `url` and wait until it has loaded.
async fn open(page: &Page, url: &str) -> anyhow::Result<()> {
    step(&format!("open {url}"), page.goto(url)).await?;
    wait_for(page, &format!("load {url}"), "true").await
}

/// A full-page PNG screenshot of `page` into [`docs_dir`]`/<name>`.
async fn screenshot(page: &Page, name: &str) -> anyhow::Result<()> {
    let dir = docs_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let params = ScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .full_page(true)
        .build();
    let png = step(&format!("screenshot {name}"), page.screenshot(params)).await?;
    anyhow::ensure!(png.starts_with(b"\x89PNG"), "{name}: not a png");
    std::fs::write(&path, png)?;
    Ok(())
}

/// Where screenshots go: the repository's `docs/` when `PEERSEARCH_UPDATE_SCREENSHOTS` is set
/// (to refresh the pictures the README shows), else `target/screenshots/` so that a test run
/// leaves the work tree clean.
fn docs_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var_os("PEERSEARCH_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs")
    } else {
        root.join("target/screenshots")
    }
}

/// The URLs of the results shown on the current results page.
async fn result_urls(page: &Page) -> anyhow::Result<Vec<String>> {
    eval(
        page,
        "Array.from(document.querySelectorAll('ol.results li.result h2 a')).map(a => a.href)",
    )
    .await
}

/// Focus the search box, type `query` and press Enter.
async fn type_search(page: &Page, query: &str) -> anyhow::Result<()> {
    let input = step("find the search box", page.find_element("input#q")).await?;
    step("focus the search box", input.click()).await?;
    let focused: String = eval(page, "document.activeElement.id").await?;
    anyhow::ensure!(focused == "q", "the search box has no focus ({focused:?})");
    step("type the query", input.type_str(query)).await?;
    step("press enter", input.press_key("Enter")).await?;
    Ok(())
}

/// A launched browser: the handle, the task that drives its DevTools connection and its
/// profile directory.
struct RunningBrowser {
    browser: Browser,
    handler: JoinHandle<()>,
    _profile: tempfile::TempDir,
}

async fn launch_browser(chromium: &std::path::Path) -> anyhow::Result<RunningBrowser> {
    let profile = tempfile::tempdir()?;
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .new_headless_mode()
        .window_size(DESKTOP.0, DESKTOP.1)
        .viewport(Viewport {
            width: DESKTOP.0,
            height: DESKTOP.1,
            ..Viewport::default()
        })
        .user_data_dir(profile.path())
        .launch_timeout(STEP_TIMEOUT)
        .request_timeout(STEP_TIMEOUT)
        .args([
            "disable-gpu",
            "disable-quic",
            "no-first-run",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
        ])
        .build()
        .map_err(|e| anyhow::anyhow!("browser config: {e}"))?;
    let (browser, mut handler) = step("launch chromium", Browser::launch(config)).await?;
    let handler = tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if let Err(e) = event {
                eprintln!("devtools connection ended: {e}");
                break;
            }
        }
    });
    Ok(RunningBrowser {
        browser,
        handler,
        _profile: profile,
    })
}

impl RunningBrowser {
    /// Close the browser (bounded), kill it if it does not go, and stop the handler task.
    async fn shut_down(mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(10), self.browser.close()).await;
        let exited = match closed {
            Ok(Ok(_)) => tokio::time::timeout(Duration::from_secs(10), self.browser.wait())
                .await
                .is_ok_and(|r| r.is_ok()),
            _ => false,
        };
        if !exited {
            let _ = self.browser.kill().await;
            let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        }
        self.handler.abort();
    }
}

/// Collect every event of type `T` the page emits into a shared list.
async fn record<T>(page: &Page) -> anyhow::Result<(Arc<Mutex<Vec<Arc<T>>>>, JoinHandle<()>)>
where
    T: chromiumoxide::cdp::IntoEventKind + Unpin + Send + Sync + 'static,
{
    let mut events = step("listen to events", page.event_listener::<T>()).await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            sink.lock().unwrap().push(e);
        }
    });
    Ok((seen, task))
}

/// What the browser scenario runs against: the peer it browses, the other peer of the network
/// and the two fixture sites.
struct Scenario<'a> {
    peer: &'a PeerProcess,
    other: &'a PeerProcess,
    site: &'a Server,
    seeded: &'a Server,
}

impl Scenario<'_> {
    async fn run(&self, browser: &Browser) -> anyhow::Result<()> {
        let base = &self.peer.base;
        let page = step("new page", browser.new_page("about:blank")).await?;
        let (dialogs, dialog_task) = record::<EventJavascriptDialogOpening>(&page).await?;

        // Search from the home page with the keyboard.
        open(&page, &format!("{base}/")).await?;
        type_search(&page, COMMON_WORD).await?;
        wait_for(
            &page,
            "first results page",
            "location.pathname === '/search' && document.querySelector('ol.results li.result')",
        )
        .await?;
        let first = result_urls(&page).await?;
        anyhow::ensure!(first.len() == 10, "a full first page: {first:?}");
        for url in &first {
            anyhow::ensure!(
                url.starts_with(&self.site.url("/page/")),
                "only fixture pages match: {url}"
            );
        }
        let highlights: Vec<String> = eval(
            &page,
            "Array.from(document.querySelectorAll('ol.results p.snippet b')).map(b => b.textContent)",
        )
        .await?;
        anyhow::ensure!(
            highlights.len() >= first.len()
                && highlights
                    .iter()
                    .all(|h| h.eq_ignore_ascii_case(COMMON_WORD)),
            "every snippet highlights the query: {highlights:?}"
        );
        let summary: String = eval(&page, "document.querySelector('p.summary').innerText").await?;
        anyhow::ensure!(
            summary.starts_with(&format!("{PAGES} results")),
            "summary counts all matches: {summary}"
        );
        screenshot(&page, "screenshot-search.png").await?;

        // The same page at phone width (the layout must not need sideways scrolling).
        step(
            "phone viewport",
            page.execute(SetDeviceMetricsOverrideParams::new(
                i64::from(PHONE.0),
                i64::from(PHONE.1),
                2.0,
                true,
            )),
        )
        .await?;
        let overflow: bool = eval(
            &page,
            "document.documentElement.scrollWidth > document.documentElement.clientWidth",
        )
        .await?;
        anyhow::ensure!(!overflow, "the results page scrolls sideways on a phone");
        screenshot(&page, "screenshot-search-phone.png").await?;
        step(
            "desktop viewport",
            page.execute(ClearDeviceMetricsOverrideParams::default()),
        )
        .await?;

        // The "Next" link leads to the second page of results.
        let next = step("find next", page.find_element("nav.pagination a[rel=next]")).await?;
        step("click next", next.click()).await?;
        wait_for(
            &page,
            "second results page",
            "new URLSearchParams(location.search).get('offset') === '10' \
             && document.querySelector('ol.results li.result')",
        )
        .await?;
        let second = result_urls(&page).await?;
        anyhow::ensure!(second.len() == 10, "a full second page: {second:?}");
        anyhow::ensure!(
            second.iter().all(|u| !first.contains(u)),
            "the second page shows other results: {first:?} / {second:?}"
        );
        let start: String = eval(
            &page,
            "document.querySelector('ol.results').getAttribute('start')",
        )
        .await?;
        anyhow::ensure!(start == "11", "the second page numbers from 11: {start}");
        let prev: bool = eval(
            &page,
            "!!document.querySelector('nav.pagination a[rel=prev]')",
        )
        .await?;
        anyhow::ensure!(prev, "the second page links back");

        // A crawled title made of markup is shown as text, never run.
        open(&page, &format!("{base}/")).await?;
        type_search(&page, HOSTILE_TITLE).await?;
        wait_for(
            &page,
            "hostile results page",
            "location.pathname === '/search' && document.querySelector('ol.results li.result')",
        )
        .await?;
        let hostile_url = self.site.url("/hostile.html");
        let headings: Vec<(String, String)> = eval(
            &page,
            "Array.from(document.querySelectorAll('ol.results li.result h2 a')).map(a => [a.href, a.innerText])",
        )
        .await?;
        let shown = headings
            .iter()
            .find(|(href, _)| *href == hostile_url)
            .map(|(_, text)| text.clone());
        anyhow::ensure!(
            shown.as_deref() == Some(HOSTILE_TITLE),
            "the hostile title is shown as its text: {headings:?}"
        );
        let images: u32 = eval(&page, "document.querySelectorAll('img').length").await?;
        let with_onerror: u32 =
            eval(&page, "document.querySelectorAll('[onerror]').length").await?;
        anyhow::ensure!(
            images == 0 && with_onerror == 0,
            "no element came from the title ({images} img, {with_onerror} onerror)"
        );
        let visible: String = eval(&page, "document.body.innerText").await?;
        anyhow::ensure!(visible.contains(HOSTILE_TITLE), "the title is visible text");
        let query_kept: String = eval(&page, "document.querySelector('input#q').value").await?;
        anyhow::ensure!(query_kept == HOSTILE_TITLE, "the box keeps the query");

        // The hostile result's "cached text" link opens its text, shown as text, never run.
        let cached = step(
            "find the cached-text link",
            page.find_element(format!(
                "ol.results li.result a.cached[href=\"/doc?url={}\"]",
                url::form_urlencoded::byte_serialize(hostile_url.as_bytes()).collect::<String>()
            )),
        )
        .await?;
        step("click the cached-text link", cached.click()).await?;
        wait_for(
            &page,
            "cached-text page",
            "location.pathname === '/doc' && document.querySelector('.cached-text p')",
        )
        .await?;
        let heading: String = eval(&page, "document.querySelector('main h1').innerText").await?;
        anyhow::ensure!(
            heading == HOSTILE_TITLE,
            "the cached page is titled with the text: {heading:?}"
        );
        let shown: String = eval(&page, "document.querySelector('.cached-text').innerText").await?;
        anyhow::ensure!(
            shown.contains("hostilemarker") && shown.contains(HOSTILE_TEXT),
            "the cached page shows the text, markup as text: {shown:?}"
        );
        let facts: String = eval(&page, "document.querySelector('dl.facts').innerText").await?;
        anyhow::ensure!(
            facts.contains(&hostile_url) && facts.contains("Fetched") && facts.contains("Held by"),
            "the cached page names the URL, fetch time and holders: {facts:?}"
        );
        let active: Value = eval(
            &page,
            "({ pwned: typeof window.__pwned, scripts: document.scripts.length, \
               imgs: document.querySelectorAll('img').length, \
               handlers: document.querySelectorAll('[onerror],[onload],[onclick]').length, \
               js_links: Array.from(document.querySelectorAll('a[href]')).filter(a => a.protocol === 'javascript:').length })",
        )
        .await?;
        anyhow::ensure!(
            active["pwned"] == "undefined"
                && active["scripts"] == 0
                && active["imgs"] == 0
                && active["handlers"] == 0
                && active["js_links"] == 0,
            "nothing from the crawled page runs on the cached page: {active}"
        );
        screenshot(&page, "screenshot-cached.png").await?;

        // The peer page: facts, the chart, the peers table, the errors table.
        open(&page, &format!("{base}/status")).await?;
        let chart: Value = eval(
            &page,
            "(() => { const s = document.querySelector('svg.chart'); return s && \
             { title: s.querySelector('title').textContent, lines: s.querySelectorAll('polyline').length, \
               width: s.getBoundingClientRect().width }; })()",
        )
        .await?;
        anyhow::ensure!(
            chart["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Pages crawled")),
            "the activity chart is drawn: {chart}"
        );
        anyhow::ensure!(
            chart["width"].as_f64().is_some_and(|w| w > 100.0),
            "the chart has a size: {chart}"
        );
        let peer_rows: Vec<String> = eval(
            &page,
            "(() => { const h = Array.from(document.querySelectorAll('h2')).find(h => h.textContent === 'Connected peers'); \
             const t = h && h.nextElementSibling && h.nextElementSibling.querySelector('table'); \
             return t ? Array.from(t.querySelectorAll('tbody tr td:first-child')).map(td => td.innerText) : []; })()",
        )
        .await?;
        let other = self.other.peer_id();
        anyhow::ensure!(
            peer_rows.iter().any(|r| r.trim() == other),
            "the peers table lists the other peer {other}: {peer_rows:?}"
        );
        let errors: String = eval(&page, "document.body.innerText").await?;
        anyhow::ensure!(
            errors.contains(&self.site.url("/missing.html")),
            "the recent errors list the 404"
        );
        let token: String = eval(
            &page,
            "document.querySelector('form[action=\"/status/seeds\"] input[type=hidden]').value",
        )
        .await?;
        anyhow::ensure!(!token.is_empty(), "the seed form carries a csrf token");

        // The seed form: type a URL, submit, land back on the page with a notice.
        let (requests, request_task) = record::<EventRequestWillBeSent>(&page).await?;
        let textarea = step("find the seed box", page.find_element("textarea#urls")).await?;
        step("focus the seed box", textarea.click()).await?;
        step("type the seed", textarea.type_str(self.seeded.url("/"))).await?;
        let submit = step(
            "find the seed button",
            page.find_element("form[action=\"/status/seeds\"] button[type=submit]"),
        )
        .await?;
        step("submit the seed form", submit.click()).await?;
        wait_for(
            &page,
            "back on the peer page",
            "location.pathname === '/status' && new URLSearchParams(location.search).has('accepted')",
        )
        .await?;
        let notice: String = eval(
            &page,
            "(document.querySelector('p.notice') || {innerText: ''}).innerText",
        )
        .await?;
        anyhow::ensure!(
            notice == "1 URL accepted, 0 rejected.",
            "the page says the URL was accepted: {notice:?}"
        );
        // The browser followed a 303 from the form's POST to the peer page.
        let redirect = requests.lock().unwrap().iter().find_map(|r| {
            let resp = r.redirect_response.as_ref()?;
            resp.url
                .ends_with("/status/seeds")
                .then(|| (resp.status, r.request.url.clone()))
        });
        request_task.abort();
        match redirect {
            Some((303, to)) if to.contains("/status?accepted=1") => {}
            other => anyhow::bail!("expected a 303 from /status/seeds, saw {other:?}"),
        }

        // The seeded site gets crawled: its marker becomes searchable.
        let marker = fixture::marker(SEEDED_SITE, 0);
        let deadline = Instant::now() + CRAWL_TIMEOUT;
        loop {
            let urls = self.peer.search_urls(&marker, "&timeout_ms=5000").await?;
            if urls.contains(&self.seeded.url("/page/0.html")) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the seeded site was not crawled within {CRAWL_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        // The peer page once the activity history has a sample after the crawls (one every
        // 10 s), for the screenshot: the chart then has something to draw.
        self.peer
            .wait_status(CRAWL_TIMEOUT, |st| {
                st["uptime_s"].as_u64().is_some_and(|s| s >= HISTORY_WAIT_S)
            })
            .await?;
        open(&page, &format!("{base}/status")).await?;
        let lines: u32 = eval(
            &page,
            "document.querySelectorAll('svg.chart polyline').length",
        )
        .await?;
        anyhow::ensure!(lines == 2, "the chart draws both series ({lines} lines)");
        screenshot(&page, "screenshot-status.png").await?;

        dialog_task.abort();
        let dialogs = dialogs.lock().unwrap().len();
        anyhow::ensure!(dialogs == 0, "{dialogs} javascript dialogs opened");
        step("close the page", page.close()).await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_works_in_a_real_browser() {
    let Some(chromium) = need::chromium("the browser test") else {
        return;
    };
    let started = Instant::now();
    let site = Server::start(lighthouse_site()).await.unwrap();
    let seeded = Server::start(
        PlainSite {
            site: SEEDED_SITE,
            pages: 5,
            home_links: String::new(),
        }
        .router(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let peers = start_network(
        dir.path(),
        2,
        &args(&[
            "--allow-private-addresses",
            "--crawl-rate",
            "500",
            "--fetch-timeout-secs",
            "3",
            "--replication",
            "1",
            "--seed",
            &site.url("/"),
        ]),
    )
    .await
    .unwrap();
    wait_network_idle(&peers, CRAWL_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", peers[0].log_tail()));
    let crawled = started.elapsed();

    let browser = launch_browser(&chromium).await.unwrap();
    // Browse the peer that owns the fixture site (the first peer crawled it too while it was
    // alone, then handed it over), so the peer page shows its documents.
    let mut docs = Vec::new();
    for p in &peers {
        let st: Value = p.get_json("/api/status").await.unwrap();
        docs.push(st["docs_indexed"].as_u64().unwrap_or(0));
    }
    let (peer, other) = if docs[0] >= docs[1] {
        (&peers[0], &peers[1])
    } else {
        (&peers[1], &peers[0])
    };
    let scenario = Scenario {
        peer,
        other,
        site: &site,
        seeded: &seeded,
    };
    let outcome = scenario.run(&browser.browser).await;
    browser.shut_down().await;
    if let Err(e) = outcome {
        let logs: Vec<String> = peers.iter().map(PeerProcess::log_tail).collect();
        panic!("{e:#}\n--- peer logs ---\n{}", logs.join("\n---\n"));
    }
    eprintln!(
        "browser test: crawl {:.1?}, browser scenario {:.1?}",
        crawled,
        started.elapsed() - crawled
    );
}
