//! Signed acknowledgement links: a token naming an alert and an expiry,
//! signed with HMAC-SHA256 under a key from the configuration, so that a
//! click on the link in a message acknowledges the alert without a login.
//! Verification refuses anything forged, altered or expired, in constant
//! time. The token: `<alert id>.<expiry, Unix s>.<signature, base64url>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted (bytes).
pub const MIN_KEY_LEN: usize = 32;

/// The signing key. Its Debug shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AckKey(Vec<u8>);

impl fmt::Debug for AckKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AckKey(<{} bytes redacted>)", self.0.len())
    }
}

impl AckKey {
    /// A key of at least [`MIN_KEY_LEN`] bytes; the error says how to make one.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<AckKey, String> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "is {} bytes: use at least {MIN_KEY_LEN} random bytes (e.g. `openssl rand -base64 48`)",
                bytes.len()
            ));
        }
        Ok(AckKey(bytes))
    }

    fn mac(&self, alert_id: i64, expires_s: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(format!("linkwatch-ack-v1\n{alert_id}\n{expires_s}").as_bytes());
        mac
    }

    /// A token for `alert_id`, valid until `expires_ms` (rounded down to the second).
    pub fn sign(&self, alert_id: i64, expires_ms: i64) -> String {
        let exp = expires_ms.div_euclid(1000);
        let tag = self.mac(alert_id, exp).finalize().into_bytes();
        format!("{alert_id}.{exp}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The alert a token acknowledges, if it is genuine and not expired at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<i64, AckError> {
        let mut parts = token.trim().split('.');
        let (Some(id), Some(exp), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AckError::Malformed);
        };
        let canonical =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !canonical(id) || !canonical(exp) {
            return Err(AckError::Malformed);
        }
        let (Ok(id), Ok(exp)) = (id.parse::<i64>(), exp.parse::<i64>()) else {
            return Err(AckError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| AckError::Malformed)?;
        self.mac(id, exp)
            .verify_slice(&sig)
            .map_err(|_| AckError::Forged)?;
        if now_ms.div_euclid(1000) >= exp {
            return Err(AckError::Expired { expired_s: exp });
        }
        Ok(id)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("not an acknowledgement token")]
    Malformed,
    #[error("the acknowledgement link is not genuine (bad signature)")]
    Forged,
    #[error(
        "the acknowledgement link expired (at Unix time {expired_s}): acknowledge in the API or with `linkwatch alerts ack`"
    )]
    Expired { expired_s: i64 },
}

/// Acknowledgement links: the key, the page they lead to, how long they last.
#[derive(Debug, Clone, PartialEq)]
pub struct AckLinks {
    pub key: AckKey,
    /// The acknowledgement page; the token is added as the `t` query parameter.
    pub base_url: String,
    pub ttl_ms: i64,
}

impl AckLinks {
    pub fn link(&self, alert_id: i64, now_ms: i64) -> String {
        let token = self.key.sign(alert_id, now_ms.saturating_add(self.ttl_ms));
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}t={token}", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> AckKey {
        AckKey::new(*b"0123456789abcdef0123456789abcdef").unwrap()
    }

    const NOW: i64 = 1_796_000_000_000;

    #[test]
    fn a_genuine_token_names_its_alert_until_it_expires() {
        let t = key().sign(42, NOW + 3_600_000);
        assert_eq!(key().verify(&t, NOW), Ok(42));
        assert_eq!(key().verify(&t, NOW + 3_599_000), Ok(42));
        assert_eq!(
            key().verify(&t, NOW + 3_600_000),
            Err(AckError::Expired {
                expired_s: (NOW + 3_600_000) / 1000
            })
        );
        let links = AckLinks {
            key: key(),
            base_url: "https://lw.example.gov.bd/ack".into(),
            ttl_ms: 60_000,
        };
        let l = links.link(7, NOW);
        let token = l.strip_prefix("https://lw.example.gov.bd/ack?t=").unwrap();
        assert_eq!(key().verify(token, NOW + 59_000), Ok(7));
        assert!(key().verify(token, NOW + 60_000).is_err());
        let l = AckLinks {
            base_url: "https://x.example/ack?lang=bn".into(),
            ..links
        }
        .link(7, NOW);
        assert!(l.contains("?lang=bn&t=7."), "{l}");
    }

    #[test]
    fn forged_altered_or_garbled_tokens_are_refused() {
        let t = key().sign(42, NOW + 3_600_000);
        let (id, rest) = t.split_once('.').unwrap();
        // Another alert, a later expiry, another key.
        assert_eq!(
            key().verify(&format!("43.{rest}"), NOW),
            Err(AckError::Forged)
        );
        let (exp, sig) = rest.split_once('.').unwrap();
        let later: i64 = exp.parse::<i64>().unwrap() + 86_400;
        assert_eq!(
            key().verify(&format!("{id}.{later}.{sig}"), NOW),
            Err(AckError::Forged)
        );
        let other = AckKey::new(*b"fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(other.verify(&t, NOW), Err(AckError::Forged));
        // An expired token with a forged signature is refused as forged.
        assert_eq!(
            key().verify(&format!("{id}.1.{sig}"), NOW),
            Err(AckError::Forged)
        );
        for bad in [
            "",
            "42",
            "42.1",
            "a.b.c",
            "42.1.%%%",
            "+42.1.AAAA",
            "42.1.AAAA.x",
            "-1.5.AAAA",
        ] {
            assert_eq!(key().verify(bad, NOW), Err(AckError::Malformed), "{bad}");
        }
    }

    #[test]
    fn keys_are_long_and_never_shown() {
        let e = AckKey::new(*b"short").unwrap_err();
        assert!(e.contains("at least 32"), "{e}");
        let k = AckKey::new(*b"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t").unwrap();
        let shown = format!("{k:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    proptest! {
        /// Any change to a genuine token is refused.
        #[test]
        fn any_altered_token_is_refused(id in 0i64..1_000_000, pos in 0usize..80, c in 0u8..128) {
            let t = key().sign(id, NOW + 60_000);
            let mut b = t.clone().into_bytes();
            let pos = pos % b.len();
            prop_assume!(b[pos] != c);
            b[pos] = c;
            if let Ok(s) = String::from_utf8(b) {
                let r = key().verify(&s, NOW);
                prop_assert!(r.is_err(), "{s} accepted as {r:?}");
            }
        }
    }
}
