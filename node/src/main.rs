//! The `peersearch` binary: glue between the command line and the node library.

mod cli;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use cli::{client, demo, extract, logging, signal, term};
use peersearch_node::{Overrides, PeerConfig};
use peersearch_web::api::CrawlScope;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// A decentralized web search engine: every peer crawls its slice of the web and answers
/// queries together with the others.
#[derive(Debug, Parser)]
#[command(name = "peersearch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one peer until Ctrl-C / SIGTERM.
    Start(Box<StartArgs>),
    /// Start N peers on loopback over a bundled corpus and print the web UI's address.
    Demo(DemoArgs),
    /// Ask a running peer and print the results.
    Search(SearchArgs),
    /// Submit seed URLs to a running peer.
    Crawl(CrawlArgs),
    /// Print a running peer's status.
    Status(StatusArgs),
    /// Print what a peer would index of a page (a local file, or - for stdin).
    Extract(ExtractArgs),
}

#[derive(Debug, Args)]
struct ExtractArgs {
    /// The HTML file, or - to read standard input.
    file: String,
    /// The page's URL, for resolving relative links [default: the file's file: URL].
    #[arg(long)]
    url: Option<String>,
    /// The Content-Type the server sent (its charset counts, as for the crawler)
    /// [default: none, the bytes are sniffed].
    #[arg(long)]
    content_type: Option<String>,
    /// Print one JSON object instead of labelled text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// TOML file with settings (keys are the flag names).
    #[arg(long, env = "PEERSEARCH_CONFIG")]
    config: Option<PathBuf>,
    /// Index shard, crawl state and the peer's key live here.
    #[arg(long, env = "PEERSEARCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Web UI and JSON API address (port 0 picks a free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "PEERSEARCH_HTTP")]
    http: Option<SocketAddr>,
    /// p2p listen address, repeatable [default: /ip4/0.0.0.0/tcp/4001].
    #[arg(long, env = "PEERSEARCH_LISTEN", value_delimiter = ',')]
    listen: Vec<String>,
    /// Known peer to join through, repeatable.
    #[arg(long, env = "PEERSEARCH_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// URL to start crawling from, repeatable.
    #[arg(long, env = "PEERSEARCH_SEED", value_delimiter = ',')]
    seed: Vec<String>,
    /// How many peers hold each document [default: 3].
    #[arg(long, env = "PEERSEARCH_REPLICATION")]
    replication: Option<usize>,
    /// Requests per second per host [default: 1.0].
    #[arg(long, env = "PEERSEARCH_CRAWL_RATE")]
    crawl_rate: Option<f64>,
    /// Stop crawling after N pages fetched by this peer [default: unlimited].
    #[arg(long, env = "PEERSEARCH_MAX_PAGES")]
    max_pages: Option<u64>,
    /// Allow crawling loopback/private/link-local addresses.
    #[arg(long, env = "PEERSEARCH_ALLOW_PRIVATE_ADDRESSES")]
    allow_private_addresses: bool,
    /// Total deadline of one fetch in seconds [default: 30].
    #[arg(long, env = "PEERSEARCH_FETCH_TIMEOUT_SECS")]
    fetch_timeout_secs: Option<u64>,
    /// Maximum link depth from a seed [default: 16].
    #[arg(long, env = "PEERSEARCH_MAX_DEPTH")]
    max_depth: Option<u32>,
    /// Maximum pages crawled per site [default: 10000].
    #[arg(long, env = "PEERSEARCH_MAX_PAGES_PER_SITE")]
    max_pages_per_site: Option<u64>,
    /// Shortest interval between two visits of a crawled page, in seconds [default: 86400].
    #[arg(long, env = "PEERSEARCH_MIN_REVISIT_SECS")]
    min_revisit_secs: Option<u64>,
    /// Longest interval between two visits of a crawled page, in seconds [default: 2592000].
    #[arg(long, env = "PEERSEARCH_MAX_REVISIT_SECS")]
    max_revisit_secs: Option<u64>,
    /// Fetches in flight at once [default: 16].
    #[arg(long, env = "PEERSEARCH_CRAWL_CONCURRENCY")]
    crawl_concurrency: Option<usize>,
    /// How often staged documents are committed, in ms [default: 1000].
    #[arg(long, env = "PEERSEARCH_COMMIT_INTERVAL_MS")]
    commit_interval_ms: Option<u64>,
    /// Local IP address the crawler's connections leave from [default: chosen by the system].
    #[arg(long, env = "PEERSEARCH_CRAWL_BIND_ADDR")]
    crawl_bind_addr: Option<std::net::IpAddr>,
    /// Period of a maintenance round (replica repair, crawl hand-over), in ms [default: 5000].
    #[arg(long, env = "PEERSEARCH_MAINTENANCE_INTERVAL_MS")]
    maintenance_interval_ms: Option<u64>,
    /// Write the bound web address to this file once listening (for `--http 127.0.0.1:0`).
    #[arg(long, env = "PEERSEARCH_HTTP_ADDR_FILE")]
    http_addr_file: Option<PathBuf>,
    /// The URL the public reaches the web UI at through a reverse proxy, e.g.
    /// https://search.example.org/ (base of the OpenSearch, RSS and page links) [default: none].
    #[arg(long, env = "PEERSEARCH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Reverse proxy address whose Forwarded / X-Forwarded-* headers are believed, repeatable
    /// [default: none].
    #[arg(long, env = "PEERSEARCH_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// Which links the crawls of this peer's seeds follow, unless a seed comes with its own
    /// scope: any, or site (each seed's own site only) [default: any].
    #[arg(long, env = "PEERSEARCH_CRAWL_SCOPE", value_parser = ["any", "site"])]
    crawl_scope: Option<String>,
    /// A site (host[:port]) the default scope follows, repeatable [default: none].
    #[arg(long, env = "PEERSEARCH_SCOPE_HOST", value_delimiter = ',')]
    scope_host: Vec<String>,
    /// A URL prefix the default scope follows, repeatable [default: none].
    #[arg(long, env = "PEERSEARCH_SCOPE_PREFIX", value_delimiter = ',')]
    scope_prefix: Vec<String>,
    /// A regular expression of URLs the default scope does not follow, repeatable (the
    /// environment variable holds one) [default: none].
    #[arg(long, env = "PEERSEARCH_SCOPE_DENY")]
    scope_deny: Vec<String>,
    /// Most links the default scope follows from a seed [default: none].
    #[arg(long, env = "PEERSEARCH_SCOPE_MAX_DEPTH")]
    scope_max_depth: Option<u32>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// How many peers to start.
    #[arg(long, default_value_t = 4)]
    peers: usize,
    /// Web UI address of the first peer.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Where the demo keeps its peers' data [default: a fresh temporary directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// The query (operators: "phrase", +must, -not, site:example.com).
    #[arg(required = true)]
    query: Vec<String>,
    /// The peer's HTTP API.
    #[arg(long, env = "PEERSEARCH_NODE", default_value = client::DEFAULT_NODE)]
    node: String,
    /// How many results.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Skip this many results.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Search only the peer's own shard.
    #[arg(long)]
    local: bool,
    /// Print the raw JSON answer.
    #[arg(long)]
    json: bool,
    /// Show how each result's score is made (with --json: the `explanation` of each hit).
    #[arg(long)]
    explain: bool,
}

#[derive(Debug, Args)]
struct CrawlArgs {
    /// URLs to crawl.
    #[arg(required = true)]
    urls: Vec<String>,
    /// The peer's HTTP API.
    #[arg(long, env = "PEERSEARCH_NODE", default_value = client::DEFAULT_NODE)]
    node: String,
    /// Follow links only to each URL's own site (with the --scope-* flags: also to theirs).
    #[arg(long)]
    site_only: bool,
    /// Follow links to any site: the seeds get no scope, whatever the peer's default.
    #[arg(long, conflicts_with_all = ["site_only", "scope_host", "scope_prefix", "scope_deny", "scope_max_depth"])]
    any_site: bool,
    /// A site (host[:port]) whose links are followed, repeatable.
    #[arg(long)]
    scope_host: Vec<String>,
    /// A URL prefix whose links are followed, repeatable.
    #[arg(long)]
    scope_prefix: Vec<String>,
    /// A regular expression of URLs not followed, repeatable.
    #[arg(long)]
    scope_deny: Vec<String>,
    /// Most links followed from a seed.
    #[arg(long)]
    scope_max_depth: Option<u32>,
}

impl CrawlArgs {
    /// The scope asked for: `None` (the peer's default) unless a scope flag is given.
    fn scope(&self) -> Option<CrawlScope> {
        let scope = CrawlScope {
            site: self.site_only,
            hosts: self.scope_host.clone(),
            prefixes: self.scope_prefix.clone(),
            deny: self.scope_deny.clone(),
            max_depth: self.scope_max_depth,
        };
        (self.any_site || scope != CrawlScope::default()).then_some(scope)
    }
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The peer's HTTP API.
    #[arg(long, env = "PEERSEARCH_NODE", default_value = client::DEFAULT_NODE)]
    node: String,
    /// Print the raw JSON answer.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The chain may carry a peer's or a crawled page's text.
            eprintln!("error: {}", term::sanitize(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Start(args) => {
            logging::init();
            let config = load_config(*args)?;
            rt.block_on(signal::run_until_signal(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            logging::init();
            if args.peers == 0 || args.peers > 32 {
                bail!("--peers must be between 1 and 32");
            }
            rt.block_on(demo::run(args.peers, args.http, args.data_dir))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search(args) => {
            let q = args.query.join(" ");
            rt.block_on(client::search(
                &args.node,
                &q,
                args.limit,
                args.offset,
                args.local,
                args.json,
                args.explain,
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crawl(args) => {
            let ok = rt.block_on(client::crawl(&args.node, &args.urls, args.scope()))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Status(args) => {
            rt.block_on(client::status(&args.node, args.json))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Extract(args) => {
            extract::run(
                &args.file,
                args.url.as_deref(),
                args.content_type.as_deref(),
                args.json,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The settings of `start`: flags and environment (clap) over the `--config` file over the
/// defaults.
fn load_config(args: StartArgs) -> Result<PeerConfig> {
    let file = match &args.config {
        Some(p) => Some(PeerConfig::from_file(p)?),
        None => None,
    };
    Ok(PeerConfig::merge(file, overrides(args))?)
}

fn overrides(a: StartArgs) -> Overrides {
    Overrides {
        data_dir: a.data_dir,
        http: a.http,
        listen: a.listen,
        bootstrap: a.bootstrap,
        seed: a.seed,
        replication: a.replication,
        crawl_rate: a.crawl_rate,
        max_pages: a.max_pages,
        allow_private_addresses: a.allow_private_addresses,
        fetch_timeout_secs: a.fetch_timeout_secs,
        max_depth: a.max_depth,
        max_pages_per_site: a.max_pages_per_site,
        min_revisit_secs: a.min_revisit_secs,
        max_revisit_secs: a.max_revisit_secs,
        crawl_concurrency: a.crawl_concurrency,
        commit_interval_ms: a.commit_interval_ms,
        crawl_bind_addr: a.crawl_bind_addr,
        maintenance_interval_ms: a.maintenance_interval_ms,
        http_addr_file: a.http_addr_file,
        public_url: a.public_url,
        trusted_proxy: a.trusted_proxy,
        crawl_scope: a.crawl_scope,
        scope_host: a.scope_host,
        scope_prefix: a.scope_prefix,
        scope_deny: a.scope_deny,
        scope_max_depth: a.scope_max_depth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Set (to a config file's path) only in the child process of
    /// `env_beats_file_and_flag_beats_env`, which runs `env_child` with the environment set.
    const CHILD: &str = "PEERSEARCH_TEST_CONFIG_CHILD";

    /// The merged settings of `peersearch start ARGS`.
    fn start_config(args: &[&str]) -> Result<PeerConfig> {
        let cli = Cli::try_parse_from(["peersearch", "start"].iter().chain(args))?;
        match cli.command {
            Command::Start(a) => load_config(*a),
            _ => unreachable!("parsed `start`"),
        }
    }

    fn write_file(dir: &Path) -> PathBuf {
        let p = dir.join("peer.toml");
        std::fs::write(
            &p,
            "maintenance-interval-ms = 2000\nhttp-addr-file = \"file.addr\"\n\
             public-url = \"https://file.example/\"\ntrusted-proxy = [\"10.0.0.1\"]\n",
        )
        .unwrap();
        p
    }

    #[test]
    fn the_default_crawl_scope_comes_from_flags_or_the_file_and_is_checked() -> Result<()> {
        if std::env::var_os(CHILD).is_some() {
            return Ok(());
        }
        let c = start_config(&[])?;
        assert!(
            c.default_scope()?.is_unrestricted(),
            "default: follow every link"
        );
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("scope.toml");
        std::fs::write(
            &file,
            "crawl-scope = \"site\"\nscope-host = [\"B.example\"]\nscope-max-depth = 3\n",
        )?;
        let file = file.to_str().unwrap();
        let spec = start_config(&["--config", file])?.default_scope()?;
        assert!(spec.site);
        assert_eq!(spec.scope.hosts, vec!["b.example"]);
        assert_eq!(spec.scope.max_depth, Some(3));
        let spec = start_config(&[
            "--config",
            file,
            "--crawl-scope",
            "any",
            "--scope-prefix",
            "http://a.example/docs/",
            "--scope-deny",
            r"\?print=",
        ])?
        .default_scope()?;
        assert!(!spec.site, "the flag beats the file");
        assert_eq!(spec.scope.prefixes, vec!["http://a.example/docs/"]);
        assert_eq!(spec.scope.deny, vec![r"\?print="]);
        assert!(start_config(&["--crawl-scope", "everything"]).is_err());
        let err = start_config(&["--scope-deny", "("])
            .unwrap_err()
            .to_string();
        assert!(err.contains("scope"), "{err}");
        Ok(())
    }

    #[test]
    fn new_settings_default_then_file_then_flag() -> Result<()> {
        if std::env::var_os(CHILD).is_some() {
            return Ok(());
        }
        let c = start_config(&[])?;
        assert_eq!(c.maintenance_interval_ms, 5000, "default");
        assert_eq!(c.http_addr_file, None, "default: no file written");
        assert_eq!(c.public_url, None, "default: no public url");
        assert!(c.trusted_proxy.is_empty(), "default: no trusted proxy");
        let dir = tempfile::tempdir()?;
        let file = write_file(dir.path());
        let file = file.to_str().unwrap();
        let c = start_config(&["--config", file])?;
        assert_eq!(c.maintenance_interval_ms, 2000, "file beats default");
        assert_eq!(c.http_addr_file, Some(PathBuf::from("file.addr")));
        assert_eq!(c.public_url.as_deref(), Some("https://file.example/"));
        assert_eq!(c.trusted_proxy, vec![ip("10.0.0.1")]);
        let c = start_config(&[
            "--config",
            file,
            "--maintenance-interval-ms",
            "700",
            "--http-addr-file",
            "flag.addr",
            "--public-url",
            "https://flag.example/sub",
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "::1",
        ])?;
        assert_eq!(c.maintenance_interval_ms, 700, "flag beats file");
        assert_eq!(c.http_addr_file, Some(PathBuf::from("flag.addr")));
        assert_eq!(c.public_url.as_deref(), Some("https://flag.example/sub/"));
        assert_eq!(c.trusted_proxy, vec![ip("127.0.0.1"), ip("::1")]);
        Ok(())
    }

    #[test]
    fn public_url_must_be_an_absolute_http_url() {
        for bad in ["search.example.org", "https://a.example/?q=1"] {
            let err = start_config(&["--public-url", bad]).unwrap_err();
            assert!(format!("{err:#}").contains("public-url"), "{err:#}");
        }
        assert!(start_config(&["--trusted-proxy", "nginx"]).is_err());
    }

    fn ip(text: &str) -> std::net::IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn maintenance_interval_out_of_range_is_refused() {
        let err = start_config(&["--maintenance-interval-ms", "0"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("maintenance-interval-ms"),
            "{err:#}"
        );
    }

    /// Environment variables cannot be set in this process (`unsafe_code` is forbidden, and
    /// tests run in parallel), so a child process runs `env_child` with them.
    #[test]
    fn env_beats_file_and_flag_beats_env() -> Result<()> {
        if std::env::var_os(CHILD).is_some() {
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let file = write_file(dir.path());
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["--exact", "tests::env_child", "--nocapture"])
            .env(CHILD, &file)
            .env("PEERSEARCH_MAINTENANCE_INTERVAL_MS", "3000")
            .env("PEERSEARCH_HTTP_ADDR_FILE", "env.addr")
            .env("PEERSEARCH_PUBLIC_URL", "https://env.example/")
            .env("PEERSEARCH_TRUSTED_PROXY", "192.0.2.1,192.0.2.2")
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
        Ok(())
    }

    #[test]
    fn env_child() -> Result<()> {
        let Some(file) = std::env::var_os(CHILD) else {
            return Ok(());
        };
        let file = file.to_str().unwrap();
        let c = start_config(&["--config", file])?;
        assert_eq!(c.maintenance_interval_ms, 3000, "env beats file");
        assert_eq!(c.http_addr_file, Some(PathBuf::from("env.addr")));
        assert_eq!(c.public_url.as_deref(), Some("https://env.example/"));
        assert_eq!(c.trusted_proxy, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
        let c = start_config(&[
            "--config",
            file,
            "--maintenance-interval-ms",
            "700",
            "--http-addr-file",
            "flag.addr",
            "--public-url",
            "https://flag.example/",
            "--trusted-proxy",
            "127.0.0.1",
        ])?;
        assert_eq!(c.maintenance_interval_ms, 700, "flag beats env");
        assert_eq!(c.http_addr_file, Some(PathBuf::from("flag.addr")));
        assert_eq!(c.public_url.as_deref(), Some("https://flag.example/"));
        assert_eq!(c.trusted_proxy, vec![ip("127.0.0.1")]);
        Ok(())
    }
}
