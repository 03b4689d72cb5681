//! Certificates the tests make with rcgen: a private certificate authority
//! (as a government's internal CA) and server certificates it signs, good,
//! expired or for another name, written as PEM files for the testbed's TLS
//! servers and for the agent's `ca_file`.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use std::path::{Path, PathBuf};

/// How long a server certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From 2000 to 4000.
    Current,
    /// From 2020-01-01 to 2021-01-01: expired.
    Expired,
}

/// A certificate authority that exists only in the test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A server certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA with `name` as its common name.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Write the CA certificate to `dir/<stem>.pem`.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, &self.pem).expect("write CA certificate");
        path
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed
    /// by this CA, written to `dir/<stem>.crt` and `dir/<stem>.key`.
    pub fn server_cert(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        validity: Validity,
    ) -> ServerCert {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server certificate params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (date_time_ymd(2000, 1, 1), date_time_ymd(4000, 1, 1)),
            Validity::Expired => (date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1)),
        };
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign server certificate");
        let out = ServerCert {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write server certificate");
        std::fs::write(&out.key, key.serialize_pem()).expect("write server key");
        out
    }
}
