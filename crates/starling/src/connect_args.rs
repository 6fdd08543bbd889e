//! How every `starling` command that talks to a broker connects to it: `--bootstrap`, and the
//! client properties librdkafka, kcat and Kafka's own tools use for TLS and SASL, given as
//! `-X key=value` or in a `--command-config` file, turned into `starling-client` options.
//!
//! The properties keep their usual names, so a kcat or `kafka-*.sh --command-config` set-up
//! works here unchanged:
//! - `security.protocol`: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL;
//! - `sasl.mechanism` (or librdkafka's `sasl.mechanisms`): PLAIN, SCRAM-SHA-256,
//!   SCRAM-SHA-512; `sasl.username` and `sasl.password`, or Java's `sasl.jaas.config`;
//! - the CAs that sign the broker's certificate: `ssl.ca.location` (librdkafka) or
//!   `ssl.truststore.location` / `ssl.truststore.certificates` (Java, PEM); without them the
//!   system's CA bundle;
//! - a client certificate: `ssl.certificate.location` and `ssl.key.location` (librdkafka) or
//!   `ssl.keystore.location` / `ssl.keystore.certificate.chain` + `ssl.keystore.key` (Java,
//!   PEM), with `ssl.key.password` for an encrypted key;
//! - `ssl.endpoint.identification.algorithm` (`https`, the default, checks the broker's name;
//!   empty or `none` does not) and `enable.ssl.certificate.verification=false` (checks
//!   nothing, for tests only);
//! - `client.id`, `request.timeout.ms`, and `bootstrap.servers` when `--bootstrap` is not
//!   given.
//!
//! An unknown property is refused, as kcat refuses one, so a typo cannot silently turn TLS off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use starling_broker::tls::{certificate_chain, private_key, root_store};
use starling_client::{Client, Options, SaslCredentials, SaslMechanism};

/// The broker address used when neither `--bootstrap` nor `bootstrap.servers` is given.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// CA bundles of the common Linux distributions, tried in turn when no CA is configured.
const SYSTEM_CA_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The properties understood, with what each is for (printed when an unknown one is given).
const KNOWN: [&str; 23] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "request.timeout.ms",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "ssl.ca.location",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.type",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.type",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
];

/// The connection options of every command that talks to a broker, for any of its
/// subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Brokers to bootstrap from, comma-separated; the first that answers is used
    /// [default: bootstrap.servers from the properties, else 127.0.0.1:9092].
    #[arg(short = 'b', long, global = true, value_name = "HOST:PORT[,...]")]
    pub bootstrap: Option<String>,
    /// A client property, named as librdkafka and Kafka's tools name it (security.protocol,
    /// sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ...). Repeatable; wins
    /// over --command-config.
    #[arg(
        short = 'X',
        long = "property",
        global = true,
        value_name = "KEY=VALUE"
    )]
    pub properties: Vec<String>,
    /// A file of client properties, one `key=value` per line (Kafka tools' --command-config,
    /// kcat's -F). Keeps passwords off the command line.
    #[arg(
        short = 'F',
        long = "command-config",
        global = true,
        value_name = "FILE"
    )]
    pub command_config: Option<PathBuf>,
}

impl ConnectArgs {
    /// Connects to the bootstrap broker with these options.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let properties = self.properties()?;
        let options = properties.options()?;
        let bootstrap = self.bootstrap(&properties);
        Ok(Client::connect(&bootstrap, options).await?)
    }

    /// `--bootstrap`, else the properties' `bootstrap.servers`, else the default.
    pub fn bootstrap(&self, properties: &ClientProperties) -> String {
        self.bootstrap
            .clone()
            .or_else(|| properties.get("bootstrap.servers").map(str::to_string))
            .or_else(|| properties.get("metadata.broker.list").map(str::to_string))
            .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string())
    }

    /// The properties of `--command-config` overridden by each `-X`.
    pub fn properties(&self) -> anyhow::Result<ClientProperties> {
        let mut properties = match &self.command_config {
            Some(path) => ClientProperties::read(path)?,
            None => ClientProperties::default(),
        };
        for pair in &self.properties {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("-X {pair}: expected KEY=VALUE"))?;
            properties.set(key.trim(), value.trim())?;
        }
        Ok(properties)
    }
}

/// Client properties by name.
#[derive(Default, Clone, PartialEq)]
pub struct ClientProperties {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the values include passwords.
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl ClientProperties {
    /// Reads a Java properties file: `key=value`, `key: value` or `key value` lines, `#` and
    /// `!` comments, a trailing backslash continuing the line.
    pub fn read(path: &Path) -> anyhow::Result<ClientProperties> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the client properties in {}", path.display()))?;
        ClientProperties::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<ClientProperties> {
        let mut properties = ClientProperties::default();
        let mut logical = String::new();
        for line in text.lines() {
            let line = line.trim_start();
            if logical.is_empty() && (line.is_empty() || line.starts_with(['#', '!'])) {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(part) => {
                    logical.push_str(part);
                    continue;
                }
                None => logical.push_str(line),
            }
            let entry = std::mem::take(&mut logical);
            let split = entry
                .find(['=', ':', ' ', '\t'])
                .with_context(|| format!("{entry:?} is not KEY=VALUE"))?;
            let key = entry[..split].trim();
            let value = entry[split + 1..]
                .trim_start_matches([' ', '\t', '=', ':'])
                .trim();
            properties.set(key, value)?;
        }
        Ok(properties)
    }

    /// Sets one property; an unknown name is refused.
    pub fn set(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        if !KNOWN.contains(&key) {
            bail!(
                "unknown client property {key:?}; these are understood: {}",
                KNOWN.join(", ")
            );
        }
        self.values.insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The first of `keys` that is set.
    fn first<'k>(&self, keys: &[&'k str]) -> Option<(&'k str, &str)> {
        keys.iter()
            .find_map(|&k| self.get(k).map(|v| (k, v)))
            .filter(|(_, v)| !v.is_empty())
    }

    /// `security.protocol`, upper-cased; PLAINTEXT when unset.
    fn security_protocol(&self) -> anyhow::Result<&'static str> {
        let protocol = self.get("security.protocol").unwrap_or("PLAINTEXT");
        ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
            .into_iter()
            .find(|p| p.eq_ignore_ascii_case(protocol))
            .with_context(|| {
                format!("security.protocol={protocol}: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            })
    }

    /// The connection options these properties describe.
    pub fn options(&self) -> anyhow::Result<Options> {
        let protocol = self.security_protocol()?;
        let mut options = Options::default();
        if let Some(id) = self.get("client.id") {
            options.client_id = id.to_string();
        }
        if let Some(ms) = self.get("request.timeout.ms") {
            let ms: u64 = ms
                .parse()
                .ok()
                .filter(|&ms| ms > 0)
                .with_context(|| format!("request.timeout.ms={ms}: a positive number"))?;
            options.request_timeout = Duration::from_millis(ms);
        }
        if protocol.ends_with("SSL") {
            options.tls = Some(self.tls_config()?);
        }
        if protocol.starts_with("SASL") {
            options.sasl = Some(self.sasl_credentials()?);
        } else if let Some((key, _)) = self.first(&["sasl.username", "sasl.jaas.config"]) {
            bail!("{key} is set but security.protocol={protocol} does not log in: use SASL_SSL or SASL_PLAINTEXT");
        }
        Ok(options)
    }

    fn sasl_credentials(&self) -> anyhow::Result<SaslCredentials> {
        let (key, name) = self
            .first(&["sasl.mechanism", "sasl.mechanisms"])
            .context("SASL needs sasl.mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")?;
        let mechanism = SaslMechanism::from_name(name).with_context(|| {
            format!("{key}={name}: this client logs in with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        })?;
        let (username, password) = self
            .user_and_password()?
            .context("SASL needs sasl.username and sasl.password (or sasl.jaas.config)")?;
        Ok(SaslCredentials {
            mechanism,
            username,
            password,
        })
    }

    /// The login of `sasl.jaas.config`, else of `sasl.username` and `sasl.password`; `None`
    /// when no user is named.
    pub fn user_and_password(&self) -> anyhow::Result<Option<(String, String)>> {
        if let Some(jaas) = self.get("sasl.jaas.config") {
            return jaas_credentials(jaas).map(Some);
        }
        let Some(user) = self.get("sasl.username") else {
            return Ok(None);
        };
        let password = self
            .get("sasl.password")
            .with_context(|| format!("sasl.username={user} needs sasl.password"))?;
        Ok(Some((user.to_string(), password.to_string())))
    }

    /// The TLS configuration: the trusted CAs, the client certificate if any, and how much of
    /// the broker's certificate is checked.
    pub fn tls_config(&self) -> anyhow::Result<Arc<ClientConfig>> {
        for key in ["ssl.truststore.type", "ssl.keystore.type"] {
            if let Some(kind) = self.get(key).filter(|k| !k.eq_ignore_ascii_case("PEM")) {
                bail!("{key}={kind}: only PEM stores are read (convert with openssl or keytool)");
            }
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify_certificate = match self.get("enable.ssl.certificate.verification") {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => bail!("enable.ssl.certificate.verification={v}: true or false"),
        };
        let verify_name = match self.get("ssl.endpoint.identification.algorithm") {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("https") => true,
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case("none") => false,
            Some(v) => bail!("ssl.endpoint.identification.algorithm={v}: https or none"),
        };
        let webpki = if verify_certificate {
            let roots = Arc::new(self.trusted_cas()?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .context("the trusted CAs")?;
            Some(webpki)
        } else {
            None
        };
        let verifier = Arc::new(BrokerCertVerifier {
            webpki,
            verify_name,
            provider: provider.clone(),
        });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.client_certificate()? {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key do not go together")?,
        };
        Ok(Arc::new(config))
    }

    /// The CAs trusted to sign the broker's certificate.
    fn trusted_cas(&self) -> anyhow::Result<rustls::RootCertStore> {
        let (source, pem) = match self.first(&["ssl.truststore.certificates"]) {
            Some((key, pem)) => (key.to_string(), pem.as_bytes().to_vec()),
            None => {
                let path = match self.first(&["ssl.ca.location", "ssl.truststore.location"]) {
                    Some((_, path)) => PathBuf::from(path),
                    None => SYSTEM_CA_BUNDLES
                        .iter()
                        .map(PathBuf::from)
                        .find(|p| p.exists())
                        .context(
                            "no CA certificates to check the broker's certificate with: set \
                             ssl.ca.location",
                        )?,
                };
                let pem = std::fs::read(&path)
                    .with_context(|| format!("reading the CA certificates {}", path.display()))?;
                (path.display().to_string(), pem)
            }
        };
        root_store(&pem).map_err(|e| anyhow::anyhow!("{source}: {e}"))
    }

    /// The client certificate chain and key, if configured.
    #[allow(clippy::type_complexity)]
    fn client_certificate(
        &self,
    ) -> anyhow::Result<
        Option<(
            Vec<CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        )>,
    > {
        let read = |key: &str, path: &str| {
            std::fs::read(path).with_context(|| format!("{key}: reading {path}"))
        };
        let (chain_pem, key_pem) = if let Some((key, path)) = self.first(&["ssl.keystore.location"])
        {
            let pem = read(key, path)?;
            (pem.clone(), pem)
        } else if let Some((_, chain)) = self.first(&["ssl.keystore.certificate.chain"]) {
            let key = self
                .first(&["ssl.keystore.key"])
                .context("ssl.keystore.certificate.chain needs ssl.keystore.key")?
                .1;
            (chain.as_bytes().to_vec(), key.as_bytes().to_vec())
        } else if let Some((key, path)) = self.first(&["ssl.certificate.location"]) {
            let key_path = self
                .first(&["ssl.key.location"])
                .context("ssl.certificate.location needs ssl.key.location")?
                .1;
            (read(key, path)?, read("ssl.key.location", key_path)?)
        } else {
            if self
                .first(&["ssl.key.location", "ssl.keystore.key"])
                .is_some()
            {
                bail!("a client key without its certificate: set ssl.certificate.location");
            }
            return Ok(None);
        };
        let chain = certificate_chain(&chain_pem).map_err(anyhow::Error::msg)?;
        let key =
            private_key(&key_pem, self.get("ssl.key.password")).map_err(anyhow::Error::msg)?;
        Ok(Some((chain, key)))
    }
}

/// The user name and password of a `sasl.jaas.config` for Kafka's PLAIN or SCRAM login
/// module: `<module> required username="..." password="...";`.
fn jaas_credentials(jaas: &str) -> anyhow::Result<(String, String)> {
    let module = jaas.split_whitespace().next().unwrap_or("");
    if !module.ends_with("PlainLoginModule") && !module.ends_with("ScramLoginModule") {
        bail!("sasl.jaas.config: only PlainLoginModule and ScramLoginModule are understood, not {module:?}");
    }
    let value = |name: &str| -> anyhow::Result<String> {
        let mut rest = jaas;
        while let Some(at) = rest.find(name) {
            let after = rest[at + name.len()..].trim_start();
            let preceded_by_space = at == 0 || rest[..at].ends_with(char::is_whitespace);
            if let (true, Some(after)) = (preceded_by_space, after.strip_prefix('=')) {
                let after = after.trim_start();
                let quoted = after
                    .strip_prefix('"')
                    .with_context(|| format!("sasl.jaas.config: {name} must be quoted"))?;
                let end = quoted
                    .find('"')
                    .with_context(|| format!("sasl.jaas.config: {name}'s quote is not closed"))?;
                return Ok(quoted[..end].to_string());
            }
            rest = &rest[at + name.len()..];
        }
        bail!("sasl.jaas.config has no {name}")
    };
    Ok((value("username")?, value("password")?))
}

/// The check of the broker's certificate: WebPKI's, with the host name check optional
/// (`ssl.endpoint.identification.algorithm=none`), or none at all
/// (`enable.ssl.certificate.verification=false`, for tests against throw-away
/// certificates). The handshake's signatures are checked against the certificate either way.
#[derive(Debug)]
struct BrokerCertVerifier {
    /// `None`: any certificate is accepted.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    verify_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for BrokerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // The name is checked last, after the chain and validity: this error means all
            // else passed.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_name => Ok(ServerCertVerified::assertion()),
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ClientProperties {
        let mut p = ClientProperties::default();
        for (k, v) in pairs {
            p.set(k, v).unwrap();
        }
        p
    }

    #[test]
    fn a_properties_file_reads_as_java_reads_it() {
        let p = ClientProperties::parse(
            "# a comment\n! another\n\nsecurity.protocol=SASL_SSL\nsasl.mechanism: SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n   \
             username=\"alice\" password=\"p=w;d\";\nclient.id   tool\n",
        )
        .unwrap();
        assert_eq!(p.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(p.get("client.id"), Some("tool"));
        let credentials = p.sasl_credentials().unwrap();
        assert_eq!(credentials.username, "alice");
        assert_eq!(credentials.password, "p=w;d");
        assert_eq!(
            credentials.mechanism,
            SaslMechanism::from_name("SCRAM-SHA-512").unwrap()
        );
    }

    #[test]
    fn an_unknown_property_is_refused_with_the_known_ones() {
        let error = ClientProperties::default()
            .set("security.protocl", "SSL")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("security.protocl") && error.contains("security.protocol"),
            "{error}"
        );
        assert!(ClientProperties::parse("ssl.cafile=/x\n").is_err());
    }

    #[test]
    fn plaintext_needs_nothing_and_carries_no_security() {
        let options = ClientProperties::default().options().unwrap();
        assert!(options.tls.is_none() && options.sasl.is_none());
        let options = props(&[("security.protocol", "plaintext"), ("client.id", "me")])
            .options()
            .unwrap();
        assert_eq!(options.client_id, "me");
    }

    #[test]
    fn sasl_plaintext_takes_librdkafkas_names() {
        let options = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "bob"),
            ("sasl.password", "secret"),
        ])
        .options()
        .unwrap();
        assert!(options.tls.is_none());
        let sasl = options.sasl.unwrap();
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("bob", "secret")
        );
        assert_eq!(sasl.mechanism, SaslMechanism::Plain);
    }

    #[test]
    fn missing_or_unusable_sasl_settings_are_named() {
        for (pairs, expected) in [
            (vec![("security.protocol", "SASL_SSL")], "sasl.mechanism"),
            (
                vec![
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "GSSAPI"),
                ],
                "GSSAPI",
            ),
            (
                vec![
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                    ("sasl.username", "u"),
                ],
                "sasl.password",
            ),
            (vec![("sasl.username", "u")], "does not log in"),
            (vec![("security.protocol", "TLS")], "security.protocol=TLS"),
            (vec![("request.timeout.ms", "0")], "request.timeout.ms"),
        ] {
            let error = format!("{:#}", props(&pairs).options().unwrap_err());
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn jaas_configs_give_their_user_and_password() {
        assert_eq!(
            jaas_credentials(
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 password=\"pw\" username = \"u\";"
            )
            .unwrap(),
            ("u".to_string(), "pw".to_string())
        );
        for bad in [
            "com.sun.security.auth.module.Krb5LoginModule required;",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=u;",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";",
        ] {
            assert!(jaas_credentials(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssl_without_a_readable_ca_is_refused_and_jks_stores_are_explained() {
        let error = format!(
            "{:#}",
            props(&[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", "/nonexistent/ca.pem")
            ])
            .options()
            .unwrap_err()
        );
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
        let error = format!(
            "{:#}",
            props(&[("security.protocol", "SSL"), ("ssl.truststore.type", "JKS")])
                .options()
                .unwrap_err()
        );
        assert!(error.contains("only PEM"), "{error}");
    }

    #[test]
    fn a_key_without_its_certificate_is_refused() {
        let error = format!(
            "{:#}",
            props(&[
                ("security.protocol", "SSL"),
                ("enable.ssl.certificate.verification", "false"),
                ("ssl.key.location", "/tmp/key.pem"),
            ])
            .options()
            .unwrap_err()
        );
        assert!(error.contains("ssl.certificate.location"), "{error}");
    }

    #[test]
    fn bootstrap_comes_from_the_flag_then_the_properties_then_the_default() {
        let args = |bootstrap: Option<&str>| ConnectArgs {
            bootstrap: bootstrap.map(str::to_string),
            properties: vec![],
            command_config: None,
        };
        let with = props(&[("bootstrap.servers", "h1:9092,h2:9092")]);
        assert_eq!(args(Some("x:1")).bootstrap(&with), "x:1");
        assert_eq!(args(None).bootstrap(&with), "h1:9092,h2:9092");
        assert_eq!(
            args(None).bootstrap(&ClientProperties::default()),
            DEFAULT_BOOTSTRAP
        );
    }

    #[test]
    fn printing_properties_shows_no_values() {
        let p = props(&[("sasl.password", "secret")]);
        assert!(!format!("{p:?}").contains("secret"));
    }
}
