//! The process's TLS crypto provider: rustls on aws-lc-rs in the full build
//! (the collector's TLS server and mail need it), on ring in the agent-only
//! build (`ring` feature: a smaller binary). Installed once at start, so that
//! every HTTPS client and server in the process uses the same one, even when
//! a test build links both.

/// Install the build's provider as the process default (no-op when one is
/// already installed).
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        return;
    }
    #[cfg(feature = "ring")]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(not(feature = "ring"))]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    // Err only when another thread installed one first: that one is used.
    let _ = provider.install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_provider_is_installed_and_stays() {
        super::install_provider();
        let first = rustls::crypto::CryptoProvider::get_default().cloned();
        assert!(first.is_some());
        super::install_provider();
        assert!(std::sync::Arc::ptr_eq(
            &first.unwrap(),
            rustls::crypto::CryptoProvider::get_default().unwrap()
        ));
    }
}
