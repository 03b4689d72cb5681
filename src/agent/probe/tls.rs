//! Certificates in HTTPS probes.
//!
//! This module owns the extra CA file an HTTPS check may trust besides the
//! system's roots (`ca_file`, for the private CAs of government internal
//! endpoints): reading it and checking that it holds certificates that
//! parse ([`load_ca_file`], used both by config validation and by the
//! probe), and the words for a certificate the probe rejected
//! ([`cert_failure`]: unknown CA, wrong name, expired, ...), which make the
//! failure reason `tls-cert`.

use super::ProbeFailure;
use rustls::CertificateError;

pub use crate::shared::ca_file::{CaFileError, load_ca_file, parse_ca_pem};

/// What a rejected server certificate means to IT staff, or `None` when the
/// TLS error is not about the certificate.
pub fn cert_failure(err: &rustls::Error) -> Option<ProbeFailure> {
    let rustls::Error::InvalidCertificate(ce) = err else {
        return None;
    };
    let words = match ce {
        CertificateError::UnknownIssuer => {
            "issued by an unknown certificate authority (a private CA is trusted with `ca_file`)"
                .to_string()
        }
        CertificateError::NotValidForName => "not valid for this host name".to_string(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "not valid for {}: it names {}",
            expected.to_str(),
            if presented.is_empty() {
                "no host".to_string()
            } else {
                presented
                    .iter()
                    .map(|p| bare_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::Expired => "expired".to_string(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("expired on {}", rfc3339(not_after.as_secs()))
        }
        CertificateError::NotValidYet => "not valid yet".to_string(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("not valid before {}", rfc3339(not_before.as_secs()))
        }
        CertificateError::Revoked => "revoked".to_string(),
        other => format!("rejected: {other}"),
    };
    Some(ProbeFailure::TlsCert(words))
}

/// `other.test` from webpki's `DnsName("other.test")` (and `192.0.2.1`
/// from `IpAddress(192.0.2.1)`); anything else as it is.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| format!("{secs} (UNIX)"), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn pem_without_certificates_or_with_junk_is_refused() {
        let p = Path::new("/etc/linkwatch/ca.pem");
        let e = parse_ca_pem(p, b"hello").unwrap_err();
        assert!(matches!(e, CaFileError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("/etc/linkwatch/ca.pem"), "{e}");
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = parse_ca_pem(p, junk).unwrap_err();
        assert!(matches!(e, CaFileError::Pem { .. }), "{e}");
        let e = load_ca_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(matches!(e, CaFileError::Read { .. }), "{e}");
    }

    #[test]
    fn certificate_errors_get_words_and_others_none() {
        let f = |ce| cert_failure(&rustls::Error::InvalidCertificate(ce)).unwrap();
        assert_eq!(f(CertificateError::UnknownIssuer).reason_word(), "tls-cert");
        assert!(
            f(CertificateError::UnknownIssuer)
                .to_string()
                .contains("unknown")
        );
        assert!(f(CertificateError::Expired).to_string().contains("expired"));
        assert!(
            f(CertificateError::NotValidForName)
                .to_string()
                .contains("not valid for")
        );
        assert_eq!(
            cert_failure(&rustls::Error::HandshakeNotComplete),
            None,
            "not a certificate problem"
        );
        assert_eq!(rfc3339(1_609_459_200), "2021-01-01T00:00:00Z");
        assert_eq!(bare_name("DnsName(\"other.test\")"), "other.test");
        assert_eq!(bare_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(bare_name("other.test"), "other.test");
    }
}
