//! A test PKI made with rcgen: a certificate authority, a server certificate for
//! `localhost`/`127.0.0.1` and client certificates with the subject a test asks for, written as
//! PEM files the broker (`ssl.keystore.location`, `ssl.truststore.location`) and librdkafka
//! (`ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`) read.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority and the directory its files go to.
pub struct TestCa {
    dir: PathBuf,
    name: String,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub ca_pem: PathBuf,
}

/// A certificate and its key, as separate PEM files and as one key store file (key, then
/// certificate chain) for `ssl.keystore.location`.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub keystore: PathBuf,
}

impl TestCa {
    /// A CA called `name` whose files go into `dir`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_pem, cert.pem()).unwrap();
        TestCa {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            issuer: Issuer::new(params, key),
            ca_pem,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, with `cn` as common name.
    pub fn server(&self, cn: &str) -> Issued {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(cn, params)
    }

    /// A client certificate whose subject is `subject` (`(type, value)` pairs, first RDN
    /// first).
    pub fn client(&self, file: &str, subject: &[(DnType, &str)]) -> Issued {
        self.client_valid_until(file, subject, None)
    }

    /// A client certificate that expired yesterday.
    pub fn expired_client(&self, file: &str, subject: &[(DnType, &str)]) -> Issued {
        let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        self.client_valid_until(file, subject, Some(yesterday))
    }

    fn client_valid_until(
        &self,
        file: &str,
        subject: &[(DnType, &str)],
        until: Option<std::time::SystemTime>,
    ) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        // A fresh name: the default one holds a CN already, which would keep its place first.
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some(until) = until {
            params.not_before = (until - std::time::Duration::from_secs(30 * 86_400)).into();
            params.not_after = until.into();
        }
        self.issue(file, params)
    }

    fn issue(&self, file: &str, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let stem = format!("{}-{file}", self.name);
        let issued = Issued {
            cert: self.dir.join(format!("{stem}.crt.pem")),
            key: self.dir.join(format!("{stem}.key.pem")),
            keystore: self.dir.join(format!("{stem}.keystore.pem")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        std::fs::write(
            &issued.keystore,
            format!("{}{}", key.serialize_pem(), cert.pem()),
        )
        .unwrap();
        issued
    }
}

/// A path as the `&str` a config value wants.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
