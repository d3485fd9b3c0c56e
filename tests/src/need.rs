//! What a test needs from the machine, and the one way a test meets a missing need.
//!
//! A test never skips itself silently: when the machine lacks what it needs (the Rust docs,
//! Chromium, permission to mount a tmpfs, wget), the test fails with a message that says what
//! to install, unless `PEERSEARCH_SKIP_<WHAT>=1` is set, in which case it says on stderr that
//! it was skipped on purpose. When the thing is there, the test runs whatever the variable
//! says: the variable excuses an absence, it does not turn a test off.

use std::io::Write;
use std::path::PathBuf;

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// What it is, as the failure message names it.
    pub what: &'static str,
    /// How to get it.
    pub install: &'static str,
    /// The variable that, set to `1`, lets a test without it pass as skipped on purpose.
    pub skip_var: &'static str,
}

/// The HTML documentation rustup installs (`$(rustc --print sysroot)/share/doc/rust/html`):
/// the corpus of the quality test, the demo's sites and the benches' documents.
pub const RUST_DOCS: Need = Need {
    what: "rustup's HTML documentation of Rust ($(rustc --print sysroot)/share/doc/rust/html)",
    install: "rustup component add rust-docs",
    skip_var: "PEERSEARCH_SKIP_RUST_DOCS",
};

/// Debian's Chromium, driven by the browser test.
pub const CHROMIUM: Need = Need {
    what: "Chromium at /usr/bin/chromium",
    install: "apt-get install -y chromium",
    skip_var: "PEERSEARCH_SKIP_BROWSER",
};

/// Permission to mount a small tmpfs (the full-disk test fills one).
pub const TMPFS: Need = Need {
    what: "permission to mount a tmpfs (`mount -t tmpfs`)",
    install: "run the tests as root, or in a container with CAP_SYS_ADMIN",
    skip_var: "PEERSEARCH_SKIP_TMPFS",
};

/// GNU wget, the baseline of the crawling bench.
pub const WGET: Need = Need {
    what: "GNU wget",
    install: "apt-get install -y wget",
    skip_var: "PEERSEARCH_SKIP_WGET",
};

impl Need {
    /// Whether `PEERSEARCH_SKIP_<WHAT>=1` is set.
    pub fn skip_requested(&self) -> bool {
        std::env::var(self.skip_var).is_ok_and(|v| v.trim() == "1")
    }

    /// The outcome of looking for the thing: `Ok` passes it through as `Some`. `Err(why)`
    /// panics with what to install, or, with the skip variable set to 1, prints that `test`
    /// (or part of it) is skipped on purpose and returns `None`.
    pub fn check<T>(&self, test: &str, found: Result<T, String>) -> Option<T> {
        match found {
            Ok(v) => Some(v),
            Err(why) if self.skip_requested() => {
                // Straight to stderr, past the test harness's capture of `eprintln!`: a skip
                // is always visible, also when the test passes.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED on purpose ({}=1): {test} needs {} ({why})",
                    self.skip_var,
                    self.what
                );
                None
            }
            Err(why) => panic!(
                "{test} needs {}: {why}. Install it ({}), or set {}=1 to skip it on purpose",
                self.what, self.install, self.skip_var
            ),
        }
    }
}

/// The Rust docs for `test` ([`RUST_DOCS`]): their directory, `None` when absent and skipped on
/// purpose; panics when absent otherwise.
pub fn rust_docs(test: &str) -> Option<PathBuf> {
    RUST_DOCS.check(
        test,
        peersearch_web::rust_docs_dir().ok_or_else(|| {
            "no book/index.html under $(rustc --print sysroot)/share/doc/rust/html".to_string()
        }),
    )
}

/// The Chromium executable for `test` ([`CHROMIUM`]), like [`rust_docs`].
pub fn chromium(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    let found = if path.exists() {
        Ok(path)
    } else {
        Err("/usr/bin/chromium does not exist".to_string())
    };
    CHROMIUM.check(test, found)
}

/// Whether `program --version` runs and succeeds (for tools such as wget).
pub fn tool_runs(program: &str) -> Result<(), String> {
    match std::process::Command::new(program)
        .arg("--version")
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`{program} --version` exited with {}", o.status)),
        Err(e) => Err(format!("cannot run `{program}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEVER_SET: Need = Need {
        what: "a thing no machine has",
        install: "nothing",
        skip_var: "PEERSEARCH_SKIP_KIT_SELF_TEST_NEVER_SET",
    };

    #[test]
    fn a_present_thing_is_passed_through() {
        assert_eq!(NEVER_SET.check("t", Ok::<_, String>(7)), Some(7));
    }

    #[test]
    #[should_panic(expected = "set PEERSEARCH_SKIP_KIT_SELF_TEST_NEVER_SET=1 to skip")]
    fn a_missing_thing_fails_the_test_and_names_the_skip_variable() {
        let _ = NEVER_SET.check::<()>("t", Err("absent".into()));
    }
}
