//! Robots directives of a page: `<meta name="robots">` and the X-Robots-Tag header.

use serde::{Deserialize, Serialize};

/// Robots directives from `<meta name="robots">` or an X-Robots-Tag header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotsDirectives {
    /// Do not index this page.
    pub noindex: bool,
    /// Do not follow the links of this page.
    pub nofollow: bool,
}

impl RobotsDirectives {
    /// Parses a comma separated directive list (`noindex, nofollow`, `none`, ...).
    pub fn parse(value: &str) -> RobotsDirectives {
        let mut d = RobotsDirectives::default();
        for token in value.split([',', ' ', '\t']).map(str::trim) {
            match token.to_ascii_lowercase().as_str() {
                "noindex" => d.noindex = true,
                "nofollow" => d.nofollow = true,
                "none" => {
                    d.noindex = true;
                    d.nofollow = true;
                }
                _ => {}
            }
        }
        d
    }

    /// Parses X-Robots-Tag header values. A value may start with a user agent
    /// (`googlebot: noindex`); such values apply only when the agent is `peersearch`.
    pub fn from_x_robots_tag<S: AsRef<str>>(values: &[S], agent: &str) -> RobotsDirectives {
        let mut d = RobotsDirectives::default();
        for value in values {
            let value = value.as_ref();
            let applies = match value.split_once(':') {
                Some((prefix, rest)) if is_user_agent_prefix(prefix) => {
                    prefix.trim().eq_ignore_ascii_case(agent).then_some(rest)
                }
                _ => Some(value),
            };
            if let Some(directives) = applies {
                d = d.union(RobotsDirectives::parse(directives));
            }
        }
        d
    }

    /// Both sets of directives together.
    pub fn union(self, other: RobotsDirectives) -> RobotsDirectives {
        RobotsDirectives {
            noindex: self.noindex || other.noindex,
            nofollow: self.nofollow || other.nofollow,
        }
    }
}

/// `unavailable_after: date` and `max-snippet: 3` also contain a colon.
fn is_user_agent_prefix(prefix: &str) -> bool {
    let p = prefix.trim().to_ascii_lowercase();
    !p.is_empty()
        && !p.contains([',', ' '])
        && !matches!(
            p.as_str(),
            "unavailable_after" | "max-snippet" | "max-image-preview" | "max-video-preview"
        )
}
