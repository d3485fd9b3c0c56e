//! The crate's error type.

/// Everything that can go wrong in the crawler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be crawled: bad syntax, unsupported scheme, no host, too long.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The SSRF guard refused the destination (private, loopback, ... address).
    #[error("blocked: {0}")]
    Blocked(String),
    /// The request did not finish within its deadline.
    #[error("request timed out")]
    Timeout,
    /// The body (after decompression) is larger than the allowed size.
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The cap that was exceeded, in bytes.
        limit: usize,
    },
    /// The redirect chain is longer than the crawler follows.
    #[error("too many redirects")]
    TooManyRedirects,
    /// A redirect pointed back to a URL already visited in the same chain.
    #[error("redirect loop at {0}")]
    RedirectLoop(String),
    /// robots.txt of a redirect target's host forbids the target (the URL is named).
    #[error("robots.txt disallows redirect target {0}")]
    RobotsDisallowed(String),
    /// robots.txt of a redirect target's host could not be read (5xx, unreachable),
    /// which RFC 9309 reads as "disallow all".
    #[error("robots.txt of redirect target unavailable: {0}")]
    RobotsUnavailable(String),
    /// The server answered with a non-2xx status.
    #[error("http status {0}")]
    Http(u16),
    /// Connection, TLS, DNS or protocol failure.
    #[error("network error: {0}")]
    Network(String),
    /// The content type is not HTML, so there is nothing to extract.
    #[error("not html: {0}")]
    NotHtml(String),
    /// The embedded crawl store (redb) failed.
    #[error("crawl store: {0}")]
    Store(#[from] redb::Error),
    /// A stored record could not be (de)serialized.
    #[error("crawl store record: {0}")]
    Record(#[from] serde_json::Error),
    /// File system error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("http client setup: {0}")]
    Client(String),
    /// A redirect led out of the crawl's scope (the target is named): not followed.
    #[error("redirect target {0} is outside the crawl scope")]
    OutOfScope(String),
    /// A crawl scope is malformed or over its bounds (the reason is named).
    #[error("bad crawl scope: {0}")]
    BadScope(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// A sitemap is not one (wrong root, not XML, a DTD) or broke off (the reason is named).
    #[error("bad sitemap: {0}")]
    Sitemap(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! redb_error_from {
    ($($t:ty),*) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Store(e.into())
            }
        })*
    };
}

redb_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}

impl Error {
    /// Whether a later attempt may succeed (network trouble, timeouts, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout | Error::Network(_) => true,
            Error::Http(status) => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
