//! Logging in to a broker with SASL (KIP-43, KIP-152): SaslHandshake v1 names the mechanism,
//! then SaslAuthenticate carries its messages, as Kafka's Java client and librdkafka do.
//!
//! * PLAIN (RFC 4616): one message, `\0user\0password`. Only sensible over TLS.
//! * SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): [`ScramLogin`], the client side of
//!   the two-round exchange. The password never travels: the client proves it knows the
//!   salted password and checks the server's signature, so a broker that does not hold the
//!   credential cannot pass itself off as one that does.
//!
//! A broker with `connections.max.reauth.ms` tells the client how long the session lasts
//! (SaslAuthenticate v1+, KIP-368); [`crate::Connection`] logs in again on the same connection
//! before that time is up.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::connection::Connection;
use crate::error::{describe_code, Error, Result};
use crate::scram::ScramMechanism;

/// The fewest SCRAM iterations a client accepts (Kafka's `ScramMechanism.minIterations`):
/// fewer would make a stolen exchange cheap to brute-force.
const MIN_SCRAM_ITERATIONS: u32 = 4096;
/// The most SCRAM iterations a client computes: a hostile broker could otherwise make each
/// login take minutes.
const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// A SASL mechanism this client can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// The mechanism's SASL name, as the broker's `sasl.enabled.mechanisms` spells it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }

    /// The mechanism named `name` (any case), if this client has it.
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        let name = name.to_ascii_uppercase();
        if name == "PLAIN" {
            return Some(SaslMechanism::Plain);
        }
        ScramMechanism::from_name(&name).map(SaslMechanism::Scram)
    }
}

impl std::fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who to log in as, and how.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Logs `conn` in with `credentials`. Returns the session lifetime the broker set, if any.
pub(crate) async fn authenticate(
    conn: &mut Connection,
    credentials: &SaslCredentials,
) -> Result<Option<Duration>> {
    let addr = conn.addr().to_string();
    let failed = |message: String| Error::Authentication {
        addr: addr.clone(),
        user: credentials.username.clone(),
        mechanism: credentials.mechanism.name(),
        message,
    };
    // SaslHandshake v0 means raw tokens outside Kafka framing, which no current broker needs.
    let version = conn.version_for(ApiKey::SaslHandshake, 1..=1)?;
    let handshake = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(credentials.mechanism.name()));
    let response = conn.send_unchecked(version, &handshake).await?;
    if let Some(error) = ResponseError::try_from_code(response.error_code) {
        let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(failed(match error {
            ResponseError::UnsupportedSaslMechanism => format!(
                "the broker does not enable {} on this listener; it enables {}",
                credentials.mechanism,
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            ),
            error => describe_code(error),
        }));
    }

    let version = conn.version_for(ApiKey::SaslAuthenticate, 0..=2)?;
    let mut exchange = Exchange::new(credentials)?;
    let mut lifetime = None;
    let mut message = exchange.first();
    loop {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
        let response = conn.send_unchecked(version, &request).await?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            return Err(failed(match response.error_message {
                Some(message) if !message.is_empty() => message.to_string(),
                _ => describe_code(error),
            }));
        }
        if response.session_lifetime_ms > 0 {
            lifetime = Some(Duration::from_millis(response.session_lifetime_ms as u64));
        }
        match exchange.next(&response.auth_bytes).map_err(failed)? {
            Some(next) => message = next,
            None => return Ok(lifetime),
        }
    }
}

/// The client's half of one mechanism's exchange.
enum Exchange {
    Plain(Vec<u8>),
    Scram(ScramLogin),
}

impl Exchange {
    fn new(credentials: &SaslCredentials) -> Result<Exchange> {
        Ok(match credentials.mechanism {
            SaslMechanism::Plain => {
                let mut message = Vec::new();
                message.push(0);
                message.extend_from_slice(credentials.username.as_bytes());
                message.push(0);
                message.extend_from_slice(credentials.password.as_bytes());
                Exchange::Plain(message)
            }
            SaslMechanism::Scram(mechanism) => {
                let mut nonce = [0u8; 24];
                getrandom::fill(&mut nonce).map_err(|e| {
                    Error::Protocol(format!("no random nonce from the operating system: {e}"))
                })?;
                Exchange::Scram(ScramLogin::new(
                    mechanism,
                    &credentials.username,
                    &credentials.password,
                    &STANDARD.encode(nonce),
                ))
            }
        })
    }

    fn first(&mut self) -> Vec<u8> {
        match self {
            Exchange::Plain(message) => std::mem::take(message),
            Exchange::Scram(login) => login.client_first(),
        }
    }

    /// The next message for the broker's `answer`, or `None` when the login is complete.
    fn next(&mut self, answer: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
        match self {
            Exchange::Plain(_) => Ok(None),
            Exchange::Scram(login) => login.answer(answer),
        }
    }
}

/// The client side of a SCRAM exchange, a pure state machine:
/// client-first → server-first → client-final → server-final.
#[derive(Debug)]
pub struct ScramLogin {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    /// Set once the client-final message is sent: the signature the server must show.
    server_signature: Option<Vec<u8>>,
    done: bool,
}

impl ScramLogin {
    /// A login as `username` with `password`, using `client_nonce` (printable, no commas).
    pub fn new(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        client_nonce: &str,
    ) -> ScramLogin {
        // RFC 5802 5.1: '=' and ',' in the name are escaped.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramLogin {
            mechanism,
            password: password.as_bytes().to_vec(),
            client_first_bare: format!("n={name},r={client_nonce}"),
            client_nonce: client_nonce.to_string(),
            server_signature: None,
            done: false,
        }
    }

    /// The client-first message: no channel binding, no authorization id.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The reply to the server's message: the client-final message for the server-first
    /// message, `None` once the server-final message proved the server's signature.
    pub fn answer(&mut self, message: &[u8]) -> std::result::Result<Option<Vec<u8>>, String> {
        if self.done {
            return Err("the broker sent a message after the SCRAM exchange ended".to_string());
        }
        let message = std::str::from_utf8(message)
            .map_err(|_| "the broker's SCRAM message is not UTF-8".to_string())?;
        match &self.server_signature {
            None => self.client_final(message).map(Some),
            Some(expected) => {
                let expected = expected.clone();
                self.done = true;
                verify_server_final(message, &expected).map(|()| None)
            }
        }
    }

    fn client_final(&mut self, server_first: &str) -> std::result::Result<Vec<u8>, String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for (i, attribute) in server_first.split(',').enumerate() {
            match attribute.split_once('=') {
                Some(("m", _)) if i == 0 => {
                    return Err("the broker asks for a SCRAM extension this client lacks".into())
                }
                Some(("e", error)) => return Err(format!("the broker refused: {error}")),
                Some(("r", value)) if i == 0 => nonce = Some(value),
                Some(("s", value)) if i == 1 => {
                    salt = Some(
                        STANDARD
                            .decode(value)
                            .map_err(|_| "the broker's SCRAM salt is not base64".to_string())?,
                    )
                }
                Some(("i", value)) if i == 2 => {
                    iterations = Some(
                        value
                            .parse::<u32>()
                            .map_err(|_| format!("the broker's SCRAM iteration count {value:?}"))?,
                    )
                }
                // Extensions after the three attributes are ignored (RFC 5802 5.1).
                _ if i > 2 => {}
                _ => {
                    return Err(format!(
                        "malformed SCRAM server-first message {server_first:?}"
                    ))
                }
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!(
                "malformed SCRAM server-first message {server_first:?}"
            ));
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("the broker's SCRAM nonce does not extend the client's".to_string());
        }
        if !(MIN_SCRAM_ITERATIONS..=MAX_SCRAM_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the broker asks for {iterations} SCRAM iterations; this client accepts \
                 {MIN_SCRAM_ITERATIONS} to {MAX_SCRAM_ITERATIONS}"
            ));
        }
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        // "biws" is base64("n,,"): the gs2 header repeated as channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }
}

fn verify_server_final(message: &str, expected: &[u8]) -> std::result::Result<(), String> {
    if let Some(error) = message.strip_prefix("e=") {
        return Err(format!("the broker refused: {error}"));
    }
    let signature = message
        .split(',')
        .next()
        .and_then(|v| v.strip_prefix("v="))
        .ok_or_else(|| format!("malformed SCRAM server-final message {message:?}"))?;
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| "the broker's SCRAM signature is not base64".to_string())?;
    if signature != expected {
        return Err(
            "the broker's SCRAM signature is wrong: it does not hold this user's credential"
                .to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's example exchange.
    fn rfc_7677_login() -> ScramLogin {
        ScramLogin::new(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        )
    }

    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    #[test]
    fn the_scram_sha_256_exchange_matches_rfc_7677s_example() {
        let mut login = rfc_7677_login();
        assert_eq!(login.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = login.answer(SERVER_FIRST.as_bytes()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let end = login
            .answer(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(end, None);
        assert!(login.answer(b"v=").is_err(), "nothing follows the end");
    }

    #[test]
    fn a_wrong_server_signature_fails_the_login() {
        let mut login = rfc_7677_login();
        login.answer(SERVER_FIRST.as_bytes()).unwrap();
        let error = login
            .answer(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(error.contains("signature is wrong"), "{error}");
    }

    #[test]
    fn a_server_error_in_the_final_message_is_reported() {
        let mut login = rfc_7677_login();
        login.answer(SERVER_FIRST.as_bytes()).unwrap();
        let error = login.answer(b"e=invalid-proof").unwrap_err();
        assert!(error.contains("invalid-proof"), "{error}");
    }

    #[test]
    fn a_nonce_that_does_not_extend_the_clients_is_refused() {
        for first in [
            "r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            let error = rfc_7677_login().answer(first.as_bytes()).unwrap_err();
            assert!(error.contains("nonce"), "{first}: {error}");
        }
    }

    #[test]
    fn too_few_or_too_many_iterations_are_refused() {
        for i in ["4095", "1000001", "-1", "many"] {
            let first = format!("r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
            assert!(rfc_7677_login().answer(first.as_bytes()).is_err(), "{i}");
        }
    }

    #[test]
    fn malformed_server_first_messages_are_refused() {
        for first in [
            "",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOx,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=not base64!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "e=unknown-user",
        ] {
            assert!(
                rfc_7677_login().answer(first.as_bytes()).is_err(),
                "{first}"
            );
        }
        assert!(rfc_7677_login().answer(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn extensions_after_the_iteration_count_are_ignored() {
        let first = format!("{SERVER_FIRST},x=extension");
        assert!(rfc_7677_login().answer(first.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn user_names_with_commas_and_equals_signs_are_escaped() {
        let login = ScramLogin::new(ScramMechanism::Sha512, "a=b,c", "pw", "nonce");
        assert_eq!(login.client_first(), b"n,,n=a=3Db=2Cc,r=nonce");
    }

    #[test]
    fn mechanisms_are_named_as_kafka_names_them_in_any_case() {
        assert_eq!(
            SaslMechanism::from_name("plain"),
            Some(SaslMechanism::Plain)
        );
        assert_eq!(
            SaslMechanism::from_name("scram-sha-512"),
            Some(SaslMechanism::Scram(ScramMechanism::Sha512))
        );
        assert_eq!(SaslMechanism::from_name("GSSAPI"), None);
        assert_eq!(
            SaslMechanism::Scram(ScramMechanism::Sha256).name(),
            "SCRAM-SHA-256"
        );
    }

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username: "alice".into(),
            password: "secret".into(),
        };
        let printed = format!("{credentials:?}");
        assert!(
            printed.contains("alice") && !printed.contains("secret"),
            "{printed}"
        );
    }
}
