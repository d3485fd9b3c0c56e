//! CSRF protection of the peer page's seed form: a signed double-submit cookie.
//!
//! `GET /status` sets a cookie holding a token `nonce.mac` (`SameSite=Strict; HttpOnly`) and
//! echoes the same token in a hidden form field. `POST /status/seeds` accepts the form only when
//! the field equals the cookie (compared in constant time) *and* the MAC (HMAC-SHA-256 keyed
//! with `WebConfig::csrf_secret`) is valid. The MAC matters on localhost: cookies are not
//! isolated by port, so another local web service could plant a cookie of its choosing, but it
//! cannot mint a valid token without the secret. The `Origin` / `Sec-Fetch-Site` headers are
//! checked as well when the browser sends them (see `handlers::html::check_same_origin`).

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::unix_nanos;
use crate::text::hex;

/// The cookie that carries the token.
pub const CSRF_COOKIE: &str = "peersearch_csrf";
/// The hidden form field that echoes it.
pub const CSRF_FIELD: &str = "csrf";

/// Bytes of random nonce and of truncated MAC in a token (128 bits each).
const PART_BYTES: usize = 16;
/// SHA-256 block size, for HMAC (RFC 2104).
const SHA256_BLOCK: usize = 64;

/// Issues and checks CSRF tokens.
pub struct Csrf {
    secret: [u8; 32],
    counter: AtomicU64,
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csrf").finish_non_exhaustive()
    }
}

/// HMAC-SHA-256 (RFC 2104) of `msg` under `key` (a key of at most one block).
fn hmac_sha256(key: &[u8; 32], msg: &[&[u8]]) -> [u8; 32] {
    let mut ipad = [0x36u8; SHA256_BLOCK];
    let mut opad = [0x5cu8; SHA256_BLOCK];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in msg {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    outer.finalize().into()
}

/// Equality that takes the same time whatever the position of the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Csrf {
    /// A token issuer keyed with `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            secret,
            counter: AtomicU64::new(0),
        }
    }

    fn mac(&self, nonce_hex: &str) -> String {
        let mac = hmac_sha256(
            &self.secret,
            &[b"peersearch-csrf-v1:", nonce_hex.as_bytes()],
        );
        hex(&mac[..PART_BYTES])
    }

    /// A fresh token. The nonce is a PRF (HMAC under the secret) of a counter and the clock,
    /// so it is unpredictable to anyone who does not know the secret.
    pub fn issue(&self) -> String {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = unix_nanos();
        let nonce = hmac_sha256(
            &self.secret,
            &[
                b"peersearch-nonce-v1:",
                &count.to_le_bytes(),
                &nanos.to_le_bytes(),
            ],
        );
        let nonce_hex = hex(&nonce[..PART_BYTES]);
        let mac = self.mac(&nonce_hex);
        format!("{nonce_hex}.{mac}")
    }

    /// True when `token` was issued with this secret.
    pub fn is_valid(&self, token: &str) -> bool {
        let Some((nonce, mac)) = token.split_once('.') else {
            return false;
        };
        let well_formed = |part: &str| {
            part.len() == PART_BYTES * 2 && part.bytes().all(|b| b.is_ascii_hexdigit())
        };
        well_formed(nonce)
            && well_formed(mac)
            && constant_time_eq(self.mac(nonce).as_bytes(), mac.as_bytes())
    }

    /// The double-submit check: the form field equals the cookie and is a valid token.
    pub fn verify(&self, cookie: Option<&str>, field: Option<&str>) -> bool {
        match (cookie, field) {
            (Some(cookie), Some(field)) => {
                constant_time_eq(cookie.as_bytes(), field.as_bytes()) && self.is_valid(field)
            }
            _ => false,
        }
    }
}

/// The value of cookie `name` in a `Cookie` header value, if any.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_shape() {
        // RFC 4231 test case 2 uses a short key; ours is always 32 bytes, so check against a
        // known value computed for key = 32 x 0x0b, msg = "Hi There" (RFC 4231 case 1 uses
        // 20 x 0x0b; zero-padding makes a 20-byte key equal to the same key padded to 32).
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        let mac = hmac_sha256(&key, &[b"Hi ", b"There"]);
        assert_eq!(
            hex(&mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn issued_tokens_verify_and_differ() {
        let csrf = Csrf::new([7; 32]);
        let a = csrf.issue();
        let b = csrf.issue();
        assert_ne!(a, b);
        assert!(csrf.is_valid(&a));
        assert!(csrf.verify(Some(&a), Some(&a)));
    }

    #[test]
    fn mismatched_missing_or_forged_tokens_fail() {
        let csrf = Csrf::new([7; 32]);
        let a = csrf.issue();
        let b = csrf.issue();
        assert!(!csrf.verify(Some(&a), Some(&b)));
        assert!(!csrf.verify(None, Some(&a)));
        assert!(!csrf.verify(Some(&a), None));
        let forged = format!("{}.{}", "0".repeat(32), "0".repeat(32));
        assert!(!csrf.verify(Some(&forged), Some(&forged)));
        let other = Csrf::new([8; 32]).issue();
        assert!(!csrf.verify(Some(&other), Some(&other)));
        assert!(!csrf.is_valid("nonsense"));
    }

    #[test]
    fn cookie_value_finds_the_named_cookie() {
        let header = "a=1; peersearch_csrf=abc.def; b=2";
        assert_eq!(cookie_value(header, CSRF_COOKIE), Some("abc.def"));
        assert_eq!(cookie_value(header, "missing"), None);
    }
}
