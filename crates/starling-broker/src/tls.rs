//! TLS for `SSL` and `SASL_SSL` listeners, with rustls, under Kafka's `ssl.*` property names.
//!
//! [`TlsSettings`] resolves one listener's settings (a `listener.name.<name>.ssl.*` key wins
//! over the plain `ssl.*` one):
//! - the key store, PEM only (`ssl.keystore.type=PEM`): `ssl.keystore.location`, a file with
//!   the private key and the certificate chain, or the same inline in
//!   `ssl.keystore.certificate.chain` and `ssl.keystore.key`; an encrypted PKCS#8 key
//!   (`ENCRYPTED PRIVATE KEY`) is opened with `ssl.key.password`;
//! - the trust store for client certificates: `ssl.truststore.location` or
//!   `ssl.truststore.certificates`, PEM CA certificates;
//! - `ssl.client.auth` (`none`, `requested`, `required`); on a `SASL_SSL` listener only its
//!   listener-prefixed value counts, as in Kafka (KIP-684);
//! - `ssl.enabled.protocols` (TLSv1.2 and TLSv1.3; older ones are not offered) and
//!   `ssl.cipher.suites` (IANA names, Java's `TLS_AES_128_GCM_SHA256` style for TLS 1.3);
//! - `ssl.principal.mapping.rules` ([`crate::ssl_principal`]).
//!
//! [`TlsListener`] holds the rustls configuration new connections are accepted with. The files
//! are read again every `ssl.keystore.reload.interval.ms` (Starling's own): when their bytes
//! changed and the new material loads, later connections get it; when it does not load, the
//! old one stays and the error is logged. Connections already open keep their session.
//!
//! [`certificate_chain`], [`root_store`] and [`private_key`] read PEM material; the `starling`
//! CLI reads its client certificate and trusted CAs with them too.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{BrokerConfig, ConfigError};
use crate::listeners::SecurityProtocol;
use crate::quotas::Principal;
use crate::ssl_principal::{self, MappingRules};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// One is asked for; a client without one connects as `User:ANONYMOUS`.
    Requested,
    /// A client without a certificate the trust store vouches for is refused.
    Required,
}

impl ClientAuth {
    pub fn parse(value: &str) -> Option<ClientAuth> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// Where PEM text comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    File(PathBuf),
    Inline(String),
}

impl Source {
    fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Source::File(path) => {
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
            }
            Source::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }
}

/// One TLS listener's settings, resolved from the configuration. (Its `Debug` leaves the key
/// password and inline key out.)
#[derive(Clone)]
pub struct TlsSettings {
    pub listener: String,
    /// The certificate chain; the key is in the same file unless `key` is set (inline).
    chain: Source,
    key: Option<Source>,
    key_password: Option<String>,
    truststore: Option<Source>,
    pub client_auth: ClientAuth,
    pub principal_rules: MappingRules,
    versions: Vec<&'static SupportedProtocolVersion>,
    cipher_suites: Vec<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("listener", &self.listener)
            .field("client_auth", &self.client_auth)
            .field("versions", &self.versions)
            .field("cipher_suites", &self.cipher_suites)
            .finish_non_exhaustive()
    }
}

/// The TLS versions Starling offers, by their Java names.
const VERSIONS: &[(&str, &SupportedProtocolVersion)] = &[
    ("TLSv1.2", &rustls::version::TLS12),
    ("TLSv1.3", &rustls::version::TLS13),
];

/// Versions Java knows that Starling does not offer (broken or deprecated): left out of
/// `ssl.enabled.protocols` with a warning rather than refused, as stock files list them.
const OLD_VERSIONS: &[&str] = &["SSLv2Hello", "SSLv3", "TLSv1", "TLSv1.1"];

/// Checks one `ssl.enabled.protocols` entry list.
pub fn parse_enabled_protocols(
    value: &str,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let mut versions = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some((_, version)) = VERSIONS.iter().find(|(n, _)| *n == name) {
            versions.push(*version);
        } else if OLD_VERSIONS.contains(&name) {
            tracing::warn!(
                protocol = name,
                "ssl.enabled.protocols: {name} is not offered (TLSv1.2 and TLSv1.3 are)"
            );
        } else {
            return Err(format!(
                "unknown protocol {name} (TLSv1.2 and TLSv1.3 are offered)"
            ));
        }
    }
    if versions.is_empty() {
        return Err("no protocol Starling offers (TLSv1.2, TLSv1.3)".to_string());
    }
    Ok(versions)
}

impl TlsSettings {
    /// The settings of the TLS listener `listener` (whose protocol is `protocol`).
    pub fn of(
        config: &BrokerConfig,
        listener: &str,
        protocol: SecurityProtocol,
    ) -> Result<TlsSettings, ConfigError> {
        let get = |key: &str| config.listener_value(listener, key);
        let key_name = |key: &str| config.listener_key_name(listener, key);
        let missing = || {
            ConfigError::InvalidValue {
                key: "listeners".to_string(),
                value: listener.to_string(),
                reason: format!(
                    "the {} listener {listener} needs its certificate and key: \
                     ssl.keystore.location (a PEM file with both), or ssl.keystore.certificate.chain \
                     and ssl.keystore.key",
                    protocol.name()
                ),
            }
        };
        let chain_inline = get("ssl.keystore.certificate.chain");
        let key_inline = get("ssl.keystore.key");
        let (chain, key) = match (get("ssl.keystore.location"), chain_inline, key_inline) {
            (Some(path), None, None) => (Source::File(PathBuf::from(path)), None),
            (None, Some(chain), Some(key)) => (
                Source::Inline(chain.to_string()),
                Some(Source::Inline(key.to_string())),
            ),
            (None, None, None) => return Err(missing()),
            (Some(path), _, _) => {
                return Err(ConfigError::InvalidValue {
                    key: key_name("ssl.keystore.location"),
                    value: path.to_string(),
                    reason: "set either ssl.keystore.location or ssl.keystore.certificate.chain \
                             and ssl.keystore.key, not both"
                        .to_string(),
                })
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(ConfigError::InvalidValue {
                    key: key_name("ssl.keystore.certificate.chain"),
                    value: "(inline PEM)".to_string(),
                    reason: "ssl.keystore.certificate.chain and ssl.keystore.key go together"
                        .to_string(),
                })
            }
        };
        let truststore = match (
            get("ssl.truststore.location"),
            get("ssl.truststore.certificates"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::InvalidValue {
                    key: key_name("ssl.truststore.location"),
                    value: get("ssl.truststore.location")
                        .unwrap_or_default()
                        .to_string(),
                    reason: "set either ssl.truststore.location or ssl.truststore.certificates, \
                             not both"
                        .to_string(),
                })
            }
            (Some(path), None) => Some(Source::File(PathBuf::from(path))),
            (None, Some(pem)) => Some(Source::Inline(pem.to_string())),
            (None, None) => None,
        };
        // On SASL_SSL, SASL authenticates the client; only a listener's own ssl.client.auth
        // asks for certificates too (Kafka's KIP-684).
        let client_auth_value = match protocol {
            SecurityProtocol::SaslSsl => config.listener_own_value(listener, "ssl.client.auth"),
            _ => get("ssl.client.auth"),
        };
        let client_auth = match client_auth_value {
            None => ClientAuth::None,
            Some(v) => ClientAuth::parse(v).ok_or_else(|| ConfigError::InvalidValue {
                key: key_name("ssl.client.auth"),
                value: v.to_string(),
                reason: "expected required, requested or none".to_string(),
            })?,
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(ConfigError::InvalidValue {
                key: key_name("ssl.client.auth"),
                value: client_auth_value.unwrap_or_default().to_string(),
                reason: format!(
                    "client certificates need a trust store: set ssl.truststore.location or \
                     ssl.truststore.certificates for listener {listener}"
                ),
            });
        }
        let principal_rules = match get("ssl.principal.mapping.rules") {
            None => MappingRules::default_rules(),
            Some(text) => {
                MappingRules::parse(text).map_err(|reason| ConfigError::InvalidValue {
                    key: key_name("ssl.principal.mapping.rules"),
                    value: text.to_string(),
                    reason,
                })?
            }
        };
        let protocols = get("ssl.enabled.protocols").unwrap_or("TLSv1.2,TLSv1.3");
        let versions =
            parse_enabled_protocols(protocols).map_err(|reason| ConfigError::InvalidValue {
                key: key_name("ssl.enabled.protocols"),
                value: protocols.to_string(),
                reason,
            })?;
        let cipher_suites: Vec<String> = get("ssl.cipher.suites")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let settings = TlsSettings {
            listener: listener.to_string(),
            chain,
            key,
            key_password: get("ssl.key.password").map(str::to_string),
            truststore,
            client_auth,
            principal_rules,
            versions,
            cipher_suites,
        };
        settings
            .provider()
            .map_err(|reason| ConfigError::InvalidValue {
                key: key_name("ssl.cipher.suites"),
                value: settings.cipher_suites.join(","),
                reason,
            })?;
        Ok(settings)
    }

    /// Ring's provider, with only the configured cipher suites when `ssl.cipher.suites` is set.
    fn provider(&self) -> Result<CryptoProvider, String> {
        // ring builds with a C compiler alone (no cmake, unlike aws-lc); rustls deprecates its
        // provider only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        if self.cipher_suites.is_empty() {
            return Ok(provider);
        }
        let names = |suite: &rustls::SupportedCipherSuite| {
            let name = suite.suite().as_str().unwrap_or("");
            [name.to_string(), name.replacen("TLS13_", "TLS_", 1)]
        };
        for wanted in &self.cipher_suites {
            if !provider
                .cipher_suites
                .iter()
                .any(|s| names(s).contains(wanted))
            {
                let offered: Vec<String> = provider
                    .cipher_suites
                    .iter()
                    .map(|s| names(s)[1].clone())
                    .collect();
                return Err(format!(
                    "cipher suite {wanted} is not offered; these are: {}",
                    offered.join(", ")
                ));
            }
        }
        provider
            .cipher_suites
            .retain(|s| names(s).iter().any(|n| self.cipher_suites.contains(n)));
        Ok(provider)
    }

    /// The bytes of every PEM source, in a fixed order (compared to notice a change).
    fn read(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut out = vec![self.chain.read()?];
        if let Some(key) = &self.key {
            out.push(key.read()?);
        }
        if let Some(truststore) = &self.truststore {
            out.push(truststore.read()?);
        }
        Ok(out)
    }

    /// Builds the rustls configuration from `material` (what [`TlsSettings::read`] read).
    fn build(&self, material: &[Vec<u8>]) -> Result<ServerConfig, String> {
        let chain_pem = &material[0];
        let key_pem = if self.key.is_some() {
            &material[1]
        } else {
            chain_pem
        };
        let chain = certificate_chain(chain_pem)?;
        let key = private_key(key_pem, self.key_password.as_deref())?;
        let provider = Arc::new(self.provider()?);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| format!("TLS versions: {e}"))?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let pem = material
                    .last()
                    .filter(|_| self.truststore.is_some())
                    .ok_or("client certificates need a trust store")?;
                let roots = root_store(pem)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match auth {
                    ClientAuth::Requested => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| format!("client certificate verifier: {e}"))?,
                )
            }
        };
        builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("the certificate and key do not go together: {e}"))
    }
}

/// The certificates of a key store's PEM text, leaf first; at least one.
pub fn certificate_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the key store's certificates do not read: {e}"))?;
    if chain.is_empty() {
        return Err("the key store holds no CERTIFICATE".to_string());
    }
    Ok(chain)
}

/// The CA certificates of a trust store's PEM text; at least one.
pub fn root_store(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("the trust store does not read: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a trust store certificate is refused: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the trust store holds no CERTIFICATE".to_string());
    }
    Ok(roots)
}

/// The private key in `pem`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), or an encrypted PKCS#8 key
/// opened with `password` (`ssl.key.password`).
pub fn private_key(pem: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find(BEGIN) {
        let body = &text[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or("an ENCRYPTED PRIVATE KEY without its END line")?;
        let base64: String = body[..end].split_whitespace().collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|e| format!("the ENCRYPTED PRIVATE KEY does not decode: {e}"))?;
        let password =
            password.ok_or("the private key is encrypted: set ssl.key.password to open it")?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| format!("the ENCRYPTED PRIVATE KEY does not parse: {e}"))?;
        let key = info.decrypt(password).map_err(|_| {
            "the private key does not open with ssl.key.password (wrong password, or an \
             encryption scheme other than PBES2 with AES)"
                .to_string()
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            "the key store holds no PRIVATE KEY".to_string()
        }
        e => format!("the private key does not read: {e}"),
    })
}

/// What a reload check found.
#[derive(Debug, PartialEq)]
pub enum Reload {
    Unchanged,
    Reloaded,
    /// The files changed but do not load; the old material stays in use.
    Failed(String),
}

/// A TLS listener's rustls configuration, reloaded when its files change.
#[derive(Debug)]
pub struct TlsListener {
    settings: TlsSettings,
    current: RwLock<(Arc<ServerConfig>, Vec<Vec<u8>>)>,
}

impl TlsListener {
    /// Loads the listener's key store and trust store.
    pub fn load(settings: TlsSettings) -> Result<TlsListener, String> {
        let material = settings.read()?;
        let config = settings.build(&material)?;
        Ok(TlsListener {
            settings,
            current: RwLock::new((Arc::new(config), material)),
        })
    }

    /// The acceptor for a new connection, with the material in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().0.clone())
    }

    /// Reads the files again; rebuilds the configuration if they changed.
    pub fn reload_if_changed(&self) -> Reload {
        let material = match self.settings.read() {
            Ok(material) => material,
            Err(e) => return Reload::Failed(e),
        };
        if material == self.current.read().1 {
            return Reload::Unchanged;
        }
        match self.settings.build(&material) {
            Ok(config) => {
                *self.current.write() = (Arc::new(config), material);
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }

    /// Who the client of an established session is: the client certificate's subject through
    /// `ssl.principal.mapping.rules`, or `User:ANONYMOUS` without a certificate.
    pub fn principal(&self, session: &ServerConnection) -> Result<Principal, String> {
        match session.peer_certificates().and_then(|c| c.first()) {
            Some(certificate) => self.certificate_principal(certificate),
            None => Ok(Principal::anonymous()),
        }
    }

    /// The principal of a verified client `certificate`: its subject through
    /// `ssl.principal.mapping.rules`.
    pub fn certificate_principal(
        &self,
        certificate: &CertificateDer<'_>,
    ) -> Result<Principal, String> {
        let dn = ssl_principal::subject_name(certificate)?;
        let user = self.settings.principal_rules.apply(&dn)?;
        Ok(Principal { user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its PKCS#8 key, PEM.
    fn certificate() -> (String, String, Vec<u8>) {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem(), key.serialize_der())
    }

    /// `der` (PKCS#8) encrypted with `password` as `openssl pkcs8 -topk8 -v2 aes-256-cbc`
    /// writes it, PEM.
    fn encrypted_pem(der: &[u8], password: &str) -> String {
        use base64::Engine;
        let info = pkcs8::PrivateKeyInfo::try_from(der).unwrap();
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            2048,
            b"saltsaltsaltsalt",
            &[7u8; 16],
        )
        .unwrap();
        let encrypted = info.encrypt_with_params(params, password).unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(encrypted.as_bytes());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<TlsSettings, ConfigError> {
        let mut config = BrokerConfig::default();
        config.set("listeners", "SSL://127.0.0.1:0").unwrap();
        for (key, value) in pairs {
            config.set(key, value).unwrap();
        }
        TlsSettings::of(&config, "SSL", SecurityProtocol::Ssl)
    }

    #[test]
    fn inline_pem_material_loads() {
        let (cert, key, _) = certificate();
        let s = settings(&[
            ("ssl.keystore.certificate.chain", &cert),
            ("ssl.keystore.key", &key),
        ])
        .unwrap();
        TlsListener::load(s).unwrap();
    }

    #[test]
    fn an_encrypted_key_opens_with_ssl_key_password_only() {
        let (cert, _, der) = certificate();
        let key = encrypted_pem(&der, "s3cret");
        let with = |password: Option<&str>| {
            let mut pairs = vec![
                ("ssl.keystore.certificate.chain", cert.as_str()),
                ("ssl.keystore.key", key.as_str()),
            ];
            if let Some(p) = password {
                pairs.push(("ssl.key.password", p));
            }
            TlsListener::load(settings(&pairs).unwrap())
        };
        with(Some("s3cret")).unwrap();
        let e = with(Some("wrong")).unwrap_err();
        assert!(e.contains("does not open with ssl.key.password"), "{e}");
        let e = with(None).unwrap_err();
        assert!(e.contains("set ssl.key.password"), "{e}");
    }

    #[test]
    fn a_key_store_file_holds_key_and_chain_in_either_order() {
        let (cert, key, _) = certificate();
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("a.pem", format!("{key}{cert}")),
            ("b.pem", format!("{cert}{key}")),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            TlsListener::load(
                settings(&[("ssl.keystore.location", path.to_str().unwrap())]).unwrap(),
            )
            .unwrap();
        }
        let path = dir.path().join("cert-only.pem");
        std::fs::write(&path, &cert).unwrap();
        let e = TlsListener::load(
            settings(&[("ssl.keystore.location", path.to_str().unwrap())]).unwrap(),
        )
        .unwrap_err();
        assert!(e.contains("no PRIVATE KEY"), "{e}");
    }

    #[test]
    fn cipher_suites_take_iana_and_java_names_and_refuse_unknown_ones() {
        let (cert, key, _) = certificate();
        let base = [
            ("ssl.keystore.certificate.chain", cert.as_str()),
            ("ssl.keystore.key", key.as_str()),
        ];
        let with = |suites: &str| {
            let mut pairs = base.to_vec();
            pairs.push(("ssl.cipher.suites", suites));
            settings(&pairs)
        };
        let s = with("TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384").unwrap();
        let provider = s.provider().unwrap();
        assert_eq!(provider.cipher_suites.len(), 2);
        TlsListener::load(s).unwrap();
        let e = with("TLS_RSA_WITH_RC4_128_MD5").unwrap_err().to_string();
        assert!(
            e.contains("ssl.cipher.suites") && e.contains("is not offered; these are:"),
            "{e}"
        );
    }

    #[test]
    fn changed_files_are_reloaded_and_broken_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.pem");
        let (cert, key, _) = certificate();
        std::fs::write(&path, format!("{key}{cert}")).unwrap();
        let listener = TlsListener::load(
            settings(&[("ssl.keystore.location", path.to_str().unwrap())]).unwrap(),
        )
        .unwrap();
        assert_eq!(listener.reload_if_changed(), Reload::Unchanged);
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(listener.reload_if_changed(), Reload::Failed(_)));
        let (cert, key, _) = certificate();
        std::fs::write(&path, format!("{key}{cert}")).unwrap();
        assert_eq!(listener.reload_if_changed(), Reload::Reloaded);
        assert_eq!(listener.reload_if_changed(), Reload::Unchanged);
    }
}
