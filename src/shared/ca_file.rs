//! An extra CA file (PEM) that HTTPS checks may trust besides the system's
//! roots: reading it and checking that each certificate parses as a trust
//! anchor. Config validation checks `ca_file` with it, and the agent's
//! HTTPS probe loads it.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};

/// A CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read CA file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path} is not usable PEM: {message}")]
    Pem { path: PathBuf, message: String },
    #[error(
        "CA file {path} holds no certificate (want one or more `-----BEGIN CERTIFICATE-----` blocks)"
    )]
    Empty { path: PathBuf },
}

/// The certificates of a PEM text, each checked to parse as a trust anchor.
pub fn parse_ca_pem(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CaFileError> {
    let bad = |message: String| CaFileError::Pem {
        path: path.to_path_buf(),
        message,
    };
    let mut certs = Vec::new();
    for (i, der) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der = der.map_err(|e| bad(format!("certificate {}: {e}", i + 1)))?;
        RootCertStore::empty()
            .add(der.clone())
            .map_err(|e| bad(format!("certificate {}: {e}", i + 1)))?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err(CaFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Read a CA file and check it ([`parse_ca_pem`]); returns its text.
pub fn load_ca_file(path: &Path) -> Result<Vec<u8>, CaFileError> {
    let pem = std::fs::read(path).map_err(|source| CaFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_ca_pem(path, &pem)?;
    Ok(pem)
}
