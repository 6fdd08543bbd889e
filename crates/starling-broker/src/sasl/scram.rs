//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as Kafka's
//! `ScramSaslServer` behaves: the credential math ([`salted_password`],
//! [`credential_from_salted_password`], used by AlterUserScramCredentials too) and the
//! two-round exchange ([`ScramServer`]).
//!
//! The exchange:
//! 1. client-first `n,[a=authzid],n=user,r=cnonce`: only the gs2 header `n` (no channel
//!    binding: `y` and `p` are refused), an authzid only if it equals the user, the user name
//!    with `=2C`/`=3D` unescaped; extensions (`tokenauth` included, delegation tokens are not
//!    supported) and a mandatory `m=` extension are refused. Kafka ignores unknown extensions;
//!    Starling refuses them because nothing here would honour them.
//! 2. server-first `r=cnonce+snonce,s=salt,i=iterations`.
//! 3. client-final `c=biws,r=nonce,p=proof`: the channel binding must repeat the gs2 header,
//!    the nonce must be the combined one, the proof is checked in constant time.
//! 4. server-final `v=ServerSignature`.
//!
//! An unknown user goes through the same steps with a fake credential (its salt derived from
//! the name under a per-process secret, so asking twice gives the same salt) and fails at the
//! proof like a wrong password, with the same message.
//!
//! Built on the RustCrypto crates (`sha2`, `hmac`, `pbkdf2`, `subtle`): the SCRAM crates on
//! crates.io are either unmaintained or shape the exchange around their own credential
//! provider and password storage, while the state machine is small and Kafka's exact
//! acceptance rules are easier to keep in code of our own.

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{random_bytes, SaslFailure};

/// The fewest iterations a SCRAM credential may have (Kafka's `ScramMechanism.minIterations`).
pub const MIN_ITERATIONS: i32 = 4096;
/// The most iterations AlterUserScramCredentials accepts (Kafka's
/// `ScramControlManager.MAX_ITERATIONS`).
pub const MAX_ITERATIONS: i32 = 16384;

pub use starling_protocol::scram::ScramMechanism;

/// What the server keeps of one user's password for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The stored credential for a salted password, as Kafka's `ScramControlManager` derives it
/// from an AlterUserScramCredentials upsertion: `StoredKey = H(HMAC(SaltedPassword, "Client
/// Key"))`, `ServerKey = HMAC(SaltedPassword, "Server Key")`.
pub fn credential_from_salted_password(
    mechanism: ScramMechanism,
    salt: &[u8],
    salted_password: &[u8],
    iterations: u32,
) -> ScramCredential {
    let client_key = mechanism.hmac(salted_password, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        stored_key: mechanism.hash(&client_key),
        server_key: mechanism.hmac(salted_password, b"Server Key"),
        iterations,
    }
}

/// A fresh random salt, as long as the mechanism's hash.
pub fn new_salt(mechanism: ScramMechanism) -> Vec<u8> {
    random_bytes(mechanism.hash_len())
}

/// The credential an unknown user is given so the exchange looks the same as for a known
/// one: the salt is a keyed hash of the name (stable across attempts), the keys are random
/// and match no proof.
fn fake_credential(mechanism: ScramMechanism, user: &str) -> ScramCredential {
    static SECRET: OnceLock<Vec<u8>> = OnceLock::new();
    let secret = SECRET.get_or_init(|| random_bytes(32));
    let mut salt_input = mechanism.name().as_bytes().to_vec();
    salt_input.push(0);
    salt_input.extend_from_slice(user.as_bytes());
    ScramCredential {
        salt: mechanism.hmac(secret, &salt_input),
        stored_key: random_bytes(mechanism.hash_len()),
        server_key: random_bytes(mechanism.hash_len()),
        iterations: MIN_ITERATIONS as u32,
    }
}

/// Turns a SCRAM `saslname` back into the user name: `=2C` is `,`, `=3D` is `=`, any other
/// `=` (and a bare `,`) is invalid.
pub fn unescape_username(sasl_name: &str) -> Option<String> {
    let mut out = String::with_capacity(sasl_name.len());
    let mut rest = sasl_name;
    while let Some(at) = rest.find(['=', ',']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return None;
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The inverse of [`unescape_username`], for clients.
pub fn escape_username(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// A step of the exchange that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this challenge (the server-first message) and wait for the client's answer.
    Challenge(Vec<u8>),
    /// The client is authenticated as `authorization_id`; send the server-final message.
    Complete {
        server_final: Vec<u8>,
        authorization_id: String,
    },
}

/// Where an exchange is.
enum State {
    AwaitingClientFirst,
    /// What the client-first message settled.
    AwaitingClientFinal(Box<ExchangeSoFar>),
    Complete,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitingClientFirst => "RECEIVE_CLIENT_FIRST_MESSAGE",
            State::AwaitingClientFinal(_) => "RECEIVE_CLIENT_FINAL_MESSAGE",
            State::Complete => "COMPLETE",
            State::Failed => "FAILED",
        }
    }
}

/// One connection's SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
    /// The server's half of the nonce; random unless a test fixes it.
    server_nonce: Option<String>,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::AwaitingClientFirst,
            server_nonce: None,
        }
    }

    /// An exchange with a fixed server nonce, for test vectors.
    pub fn with_server_nonce(mechanism: ScramMechanism, nonce: &str) -> ScramServer {
        ScramServer {
            server_nonce: Some(nonce.to_string()),
            ..ScramServer::new(mechanism)
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Takes the client's next message. `lookup` finds a user's stored credential for this
    /// mechanism; it is called once, on the client-first message. Any failure ends the
    /// exchange.
    pub fn evaluate(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, SaslFailure> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let result = match state {
            State::AwaitingClientFirst => self.client_first(message, lookup),
            State::AwaitingClientFinal(so_far) => self.client_final(message, &so_far),
            other => Err(SaslFailure::illegal_state(format!(
                "Unexpected challenge in Sasl server state {}",
                other.name()
            ))),
        };
        match result {
            Ok((step, next)) => {
                self.state = next;
                Ok(step)
            }
            Err(failure) => {
                self.state = State::Failed;
                Err(failure)
            }
        }
    }

    fn refuse(&self, detail: impl Into<String>) -> SaslFailure {
        SaslFailure::hidden(self.mechanism.name(), detail)
    }

    fn client_first(
        &self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<(ScramStep, State), SaslFailure> {
        let text = std::str::from_utf8(message)
            .map_err(|_| self.refuse("Invalid SCRAM client first message format"))?;
        let first = parse_client_first(text).map_err(|reason| self.refuse(reason))?;
        if let Some(authzid) = &first.authzid {
            if *authzid != first.user {
                return Err(SaslFailure::told(
                    "Authentication failed: Client requested an authorization id that is different from username",
                ));
            }
        }
        let (credential, known_user) = match lookup(&first.user) {
            Some(credential) => (credential, true),
            None => (fake_credential(self.mechanism, &first.user), false),
        };
        if credential.iterations < MIN_ITERATIONS as u32 {
            return Err(self.refuse(format!(
                "Iterations {} is less than the minimum {} for {}",
                credential.iterations,
                MIN_ITERATIONS,
                self.mechanism.name()
            )));
        }
        let server_nonce = self
            .server_nonce
            .clone()
            .unwrap_or_else(|| URL_SAFE_NO_PAD.encode(random_bytes(24)));
        let nonce = format!("{}{}", first.nonce, server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credential.salt),
            credential.iterations
        );
        let step = ScramStep::Challenge(server_first.clone().into_bytes());
        Ok((
            step,
            State::AwaitingClientFinal(Box::new(ExchangeSoFar {
                user: first.user,
                gs2_header: first.gs2_header,
                client_first_bare: first.bare,
                server_first,
                nonce,
                credential,
                known_user,
            })),
        ))
    }

    fn client_final(
        &self,
        message: &[u8],
        so_far: &ExchangeSoFar,
    ) -> Result<(ScramStep, State), SaslFailure> {
        let text = std::str::from_utf8(message)
            .map_err(|_| self.refuse("Invalid SCRAM client final message format"))?;
        let last = parse_client_final(text).map_err(|reason| self.refuse(reason))?;
        if last.channel_binding != so_far.gs2_header.as_bytes() {
            return Err(self.refuse("The channel binding does not repeat the gs2 header"));
        }
        // Kafka's check is that the client's nonce *ends with* the agreed one, not that it is
        // equal: librdkafka 2.0 (Debian's kcat) sends its own nonce again in front of it, and Kafka's
        // broker accepts that (the proof covers the message as sent either way).
        if !last.nonce.ends_with(&so_far.nonce) {
            return Err(self.refuse(format!(
                "Invalid client nonce in the final client message: {:?}, not the {:?} agreed",
                last.nonce, so_far.nonce
            )));
        }
        let auth_message = format!(
            "{},{},{}",
            so_far.client_first_bare, so_far.server_first, last.without_proof
        );
        let mechanism = self.mechanism;
        let credential = &so_far.credential;
        let client_signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        // A proof of the wrong length is refused after the same work as a wrong one.
        let mut client_key = vec![0u8; client_signature.len()];
        let proof_fits = last.proof.len() == client_signature.len();
        for (i, byte) in client_key.iter_mut().enumerate() {
            *byte = last.proof.get(i).copied().unwrap_or(0) ^ client_signature[i];
        }
        let computed_stored_key = mechanism.hash(&client_key);
        let matches: bool = computed_stored_key.ct_eq(&credential.stored_key).into();
        if !(matches && proof_fits && so_far.known_user) {
            let why = if so_far.known_user {
                "Invalid client credentials"
            } else {
                "Authentication failed: Invalid user credentials"
            };
            return Err(self.refuse(format!("{why} (user {:?})", so_far.user)));
        }
        let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        let server_final = format!("v={}", STANDARD.encode(server_signature));
        Ok((
            ScramStep::Complete {
                server_final: server_final.into_bytes(),
                authorization_id: so_far.user.clone(),
            },
            State::Complete,
        ))
    }
}

/// What the client-first message settled.
struct ExchangeSoFar {
    user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
    known_user: bool,
}

/// A parsed client-first message.
#[derive(Debug, PartialEq, Eq)]
struct ClientFirst {
    gs2_header: String,
    authzid: Option<String>,
    user: String,
    nonce: String,
    /// The message without its gs2 header, as it goes into the AuthMessage.
    bare: String,
}

/// A nonce: printable ASCII but `,` (RFC 5802 `printable`).
fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn parse_client_first(text: &str) -> Result<ClientFirst, String> {
    let invalid = || "Invalid SCRAM client first message format".to_string();
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().ok_or_else(invalid)?;
    let authzid_part = parts.next().ok_or_else(invalid)?;
    let bare = parts.next().ok_or_else(invalid)?;
    match flag {
        "n" => {}
        "y" | "p" => return Err("Channel binding is not supported".into()),
        _ if flag.starts_with("p=") => return Err("Channel binding is not supported".into()),
        _ => return Err(invalid()),
    }
    let authzid = match authzid_part {
        "" => None,
        a => {
            let name = a.strip_prefix("a=").ok_or_else(invalid)?;
            Some(
                unescape_username(name)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(invalid)?,
            )
        }
    };
    let gs2_header = format!("{flag},{authzid_part},");
    let mut attributes = bare.split(',');
    let mut user_attribute = attributes.next().ok_or_else(invalid)?;
    if user_attribute.starts_with("m=") {
        return Err("Mandatory SCRAM extensions are not supported".into());
    }
    user_attribute = user_attribute.strip_prefix("n=").ok_or_else(invalid)?;
    let user = unescape_username(user_attribute)
        .filter(|u| !u.is_empty())
        .ok_or_else(invalid)?;
    let nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| is_valid_nonce(n))
        .ok_or_else(invalid)?;
    if let Some(extension) = attributes.next() {
        return match extension.split_once('=') {
            Some(("tokenauth", _)) => {
                Err("Delegation token authentication is not supported".into())
            }
            Some((name, _)) if !name.is_empty() => {
                Err(format!("Unsupported SCRAM extension {name:?}"))
            }
            _ => Err(invalid()),
        };
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        user,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// A parsed client-final message.
#[derive(Debug, PartialEq, Eq)]
struct ClientFinal {
    channel_binding: Vec<u8>,
    nonce: String,
    proof: Vec<u8>,
    /// `c=…,r=…`, as it goes into the AuthMessage.
    without_proof: String,
}

fn parse_client_final(text: &str) -> Result<ClientFinal, String> {
    let invalid = || "Invalid SCRAM client final message format".to_string();
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(invalid)?;
    let proof = STANDARD.decode(proof).map_err(|_| invalid())?;
    let mut attributes = without_proof.split(',');
    let channel_binding = attributes
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .and_then(|c| STANDARD.decode(c).ok())
        .ok_or_else(invalid)?;
    let nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| is_valid_nonce(n))
        .ok_or_else(invalid)?;
    if attributes.next().is_some() {
        return Err("SCRAM extensions are not supported".into());
    }
    Ok(ClientFinal {
        channel_binding,
        nonce: nonce.to_string(),
        proof,
        without_proof: without_proof.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::SaslErrorKind;

    const INVALID_256: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256";

    /// RFC 7677 section 3: user "user", password "pencil".
    fn rfc7677_credential() -> ScramCredential {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        credential_from_salted_password(ScramMechanism::Sha256, &salt, &salted, 4096)
    }

    fn rfc7677_server() -> ScramServer {
        ScramServer::with_server_nonce(ScramMechanism::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    }

    const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    #[test]
    fn the_rfc7677_sha256_exchange_completes_with_its_server_signature() {
        let mut server = rfc7677_server();
        let first = server
            .evaluate(RFC7677_CLIENT_FIRST.as_bytes(), |u| {
                (u == "user").then(rfc7677_credential)
            })
            .unwrap();
        assert_eq!(
            first,
            ScramStep::Challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        let last = server
            .evaluate(RFC7677_CLIENT_FINAL.as_bytes(), |_| unreachable!())
            .unwrap();
        assert_eq!(
            last,
            ScramStep::Complete {
                server_final: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
                authorization_id: "user".into(),
            }
        );
        assert!(server.is_complete());
    }

    #[test]
    fn a_message_after_completion_is_an_illegal_state() {
        let mut server = rfc7677_server();
        server
            .evaluate(RFC7677_CLIENT_FIRST.as_bytes(), |_| {
                Some(rfc7677_credential())
            })
            .unwrap();
        server
            .evaluate(RFC7677_CLIENT_FINAL.as_bytes(), |_| None)
            .unwrap();
        let again = server
            .evaluate(RFC7677_CLIENT_FINAL.as_bytes(), |_| None)
            .unwrap_err();
        assert_eq!(again.kind, SaslErrorKind::IllegalState);
        assert_eq!(
            again.client_message,
            "Unexpected challenge in Sasl server state COMPLETE"
        );
    }

    /// A SCRAM client as RFC 5802 describes it, to drive the server.
    struct TestClient {
        mechanism: ScramMechanism,
        user: String,
        password: String,
        nonce: String,
        client_first_bare: String,
        salted: Vec<u8>,
        auth_message: String,
    }

    impl TestClient {
        fn new(mechanism: ScramMechanism, user: &str, password: &str) -> TestClient {
            TestClient {
                mechanism,
                user: user.into(),
                password: password.into(),
                nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
                client_first_bare: String::new(),
                salted: Vec::new(),
                auth_message: String::new(),
            }
        }

        fn first(&mut self) -> Vec<u8> {
            self.client_first_bare = format!("n={},r={}", escape_username(&self.user), self.nonce);
            format!("n,,{}", self.client_first_bare).into_bytes()
        }

        fn last(&mut self, server_first: &[u8]) -> Vec<u8> {
            let server_first = std::str::from_utf8(server_first).unwrap();
            let mut nonce = "";
            let mut salt = Vec::new();
            let mut iterations = 0;
            for attribute in server_first.split(',') {
                let (key, value) = attribute.split_at(2);
                match key {
                    "r=" => nonce = value,
                    "s=" => salt = STANDARD.decode(value).unwrap(),
                    "i=" => iterations = value.parse().unwrap(),
                    _ => panic!("unexpected attribute {attribute}"),
                }
            }
            assert!(nonce.starts_with(&self.nonce));
            self.salted =
                self.mechanism
                    .salted_password(self.password.as_bytes(), &salt, iterations);
            let without_proof = format!("c=biws,r={nonce}");
            self.auth_message =
                format!("{},{server_first},{without_proof}", self.client_first_bare);
            let client_key = self.mechanism.hmac(&self.salted, b"Client Key");
            let stored_key = self.mechanism.hash(&client_key);
            let signature = self
                .mechanism
                .hmac(&stored_key, self.auth_message.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(a, b)| a ^ b)
                .collect();
            format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
        }

        fn expected_server_final(&self) -> Vec<u8> {
            let server_key = self.mechanism.hmac(&self.salted, b"Server Key");
            let signature = self
                .mechanism
                .hmac(&server_key, self.auth_message.as_bytes());
            format!("v={}", STANDARD.encode(signature)).into_bytes()
        }
    }

    fn stored(mechanism: ScramMechanism, password: &str, iterations: u32) -> ScramCredential {
        let salt = new_salt(mechanism);
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        credential_from_salted_password(mechanism, &salt, &salted, iterations)
    }

    /// Runs a whole exchange; the server knows `known_user` with `stored_password`.
    fn exchange(
        mechanism: ScramMechanism,
        client: &mut TestClient,
        known_user: &str,
        credential: &ScramCredential,
    ) -> Result<ScramStep, SaslFailure> {
        let mut server = ScramServer::new(mechanism);
        let lookup = |u: &str| (u == known_user).then(|| credential.clone());
        let ScramStep::Challenge(server_first) = server.evaluate(&client.first(), lookup)? else {
            panic!("the first step must be a challenge");
        };
        let last = client.last(&server_first);
        server.evaluate(&last, |_| None)
    }

    #[test]
    fn a_sha512_client_with_the_right_password_completes_and_verifies_the_server() {
        let credential = stored(ScramMechanism::Sha512, "s3cret", 8192);
        let mut client = TestClient::new(ScramMechanism::Sha512, "alice", "s3cret");
        let step = exchange(ScramMechanism::Sha512, &mut client, "alice", &credential).unwrap();
        assert_eq!(
            step,
            ScramStep::Complete {
                server_final: client.expected_server_final(),
                authorization_id: "alice".into(),
            }
        );
    }

    #[test]
    fn a_user_name_with_escaped_comma_and_equals_authenticates() {
        let credential = stored(ScramMechanism::Sha512, "pw", 4096);
        let mut client = TestClient::new(ScramMechanism::Sha512, "a,b=c", "pw");
        let step = exchange(ScramMechanism::Sha512, &mut client, "a,b=c", &credential).unwrap();
        assert!(
            matches!(step, ScramStep::Complete { authorization_id, .. } if authorization_id == "a,b=c")
        );
    }

    #[test]
    fn a_wrong_password_and_an_unknown_user_fail_alike() {
        let credential = stored(ScramMechanism::Sha256, "right", 4096);
        let mut wrong = TestClient::new(ScramMechanism::Sha256, "alice", "wrong");
        let wrong = exchange(ScramMechanism::Sha256, &mut wrong, "alice", &credential).unwrap_err();
        let mut nobody = TestClient::new(ScramMechanism::Sha256, "nobody", "right");
        let nobody =
            exchange(ScramMechanism::Sha256, &mut nobody, "alice", &credential).unwrap_err();
        assert_eq!(wrong.client_message, INVALID_256);
        assert_eq!(nobody.client_message, INVALID_256);
        assert_eq!(wrong.error_code(), 58);
        assert_eq!(nobody.error_code(), 58);
    }

    #[test]
    fn an_unknown_user_gets_a_challenge_with_a_salt_stable_across_attempts() {
        let challenge = || {
            let mut server = ScramServer::new(ScramMechanism::Sha256);
            match server.evaluate(b"n,,n=ghost,r=abc", |_| None).unwrap() {
                ScramStep::Challenge(c) => String::from_utf8(c).unwrap(),
                other => panic!("{other:?}"),
            }
        };
        let salt = |c: String| c.split(',').nth(1).unwrap().to_string();
        let (a, b) = (challenge(), challenge());
        assert!(a.ends_with(",i=4096"));
        assert_eq!(salt(a), salt(b));
    }

    #[test]
    fn the_combined_nonce_starts_with_the_clients_and_adds_the_servers() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let ScramStep::Challenge(c) = server
            .evaluate(b"n,,n=user,r=clientnonce", |_| Some(rfc7677_credential()))
            .unwrap()
        else {
            panic!()
        };
        let nonce = std::str::from_utf8(&c).unwrap().split(',').next().unwrap();
        assert!(nonce.starts_with("r=clientnonce") && nonce.len() > "r=clientnonce".len() + 16);
    }

    fn first_refusal(message: &[u8]) -> SaslFailure {
        ScramServer::new(ScramMechanism::Sha256)
            .evaluate(message, |_| Some(rfc7677_credential()))
            .unwrap_err()
    }

    #[test]
    fn channel_binding_is_refused() {
        for message in [&b"y,,n=user,r=abc"[..], b"p=tls-unique,,n=user,r=abc"] {
            let failure = first_refusal(message);
            assert_eq!(failure.client_message, INVALID_256);
            assert!(failure.detail.contains("Channel binding"), "{failure:?}");
        }
    }

    #[test]
    fn an_authzid_other_than_the_user_is_refused_with_kafkas_message() {
        let failure = first_refusal(b"n,a=admin,n=user,r=abc");
        assert_eq!(
            failure.client_message,
            "Authentication failed: Client requested an authorization id that is different from username"
        );
    }

    #[test]
    fn an_authzid_equal_to_the_user_is_accepted() {
        let mut server = rfc7677_server();
        let step = server.evaluate(b"n,a=user,n=user,r=rOprNGfwEbeRWgbNEkqO", |_| {
            Some(rfc7677_credential())
        });
        assert!(matches!(step, Ok(ScramStep::Challenge(_))));
        // Its channel binding must then repeat `n,a=user,`, so the RFC's `biws` is refused.
        let failure = server
            .evaluate(RFC7677_CLIENT_FINAL.as_bytes(), |_| None)
            .unwrap_err();
        assert_eq!(failure.client_message, INVALID_256);
    }

    #[test]
    fn extensions_are_refused_and_tokenauth_is_not_supported() {
        let token = first_refusal(b"n,,n=user,r=abc,tokenauth=true");
        assert!(token.detail.contains("Delegation token"), "{token:?}");
        let other = first_refusal(b"n,,n=user,r=abc,ext=1");
        assert!(other.detail.contains("ext"), "{other:?}");
        let mandatory = first_refusal(b"n,,m=x,n=user,r=abc");
        assert!(mandatory.detail.contains("Mandatory"), "{mandatory:?}");
        for failure in [token, other, mandatory] {
            assert_eq!(failure.client_message, INVALID_256);
        }
    }

    #[test]
    fn malformed_client_first_messages_are_refused_without_panicking() {
        for message in [
            &b""[..],
            b"n",
            b"n,,",
            b"n,,n=,r=abc",
            b"n,,n=user",
            b"n,,n=user,r=",
            b"n,,n=us=er,r=abc",
            b"n,,n=user,r=a b",
            b"n,x,n=user,r=abc",
            b"x,,n=user,r=abc",
            b"n,,r=abc,n=user",
            b"\xff\xfe",
            b"n,,n=\xc3,r=abc",
        ] {
            let failure = first_refusal(message);
            assert_eq!(failure.client_message, INVALID_256, "{message:?}");
        }
    }

    #[test]
    fn malformed_or_mismatched_client_final_messages_are_refused() {
        for last in [
            "",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        ] {
            let mut server = rfc7677_server();
            server
                .evaluate(RFC7677_CLIENT_FIRST.as_bytes(), |_| Some(rfc7677_credential()))
                .unwrap();
            let failure = server.evaluate(last.as_bytes(), |_| None).unwrap_err();
            assert_eq!(failure.client_message, INVALID_256, "{last}");
            assert!(!server.is_complete());
            let after = server.evaluate(last.as_bytes(), |_| None).unwrap_err();
            assert_eq!(after.kind, SaslErrorKind::IllegalState);
        }
    }

    #[test]
    fn a_stored_credential_below_the_minimum_iterations_is_refused() {
        let weak = stored(ScramMechanism::Sha256, "pw", 1000);
        let failure = ScramServer::new(ScramMechanism::Sha256)
            .evaluate(b"n,,n=user,r=abc", |_| Some(weak))
            .unwrap_err();
        assert_eq!(failure.client_message, INVALID_256);
        assert!(failure.detail.contains("less than the minimum 4096"));
    }

    #[test]
    fn user_names_escape_and_unescape() {
        assert_eq!(unescape_username("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(escape_username("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_username("a=2"), None);
        assert_eq!(unescape_username("a=41"), None);
        assert_eq!(unescape_username("a,b"), None);
        assert_eq!(unescape_username("ünï"), Some("ünï".into()));
    }

    #[test]
    fn mechanisms_map_names_and_type_ids_as_kafka() {
        assert_eq!(
            ScramMechanism::from_name("SCRAM-SHA-256"),
            Some(ScramMechanism::Sha256)
        );
        assert_eq!(
            ScramMechanism::from_name("SCRAM-SHA-512"),
            Some(ScramMechanism::Sha512)
        );
        assert_eq!(ScramMechanism::from_name("SCRAM-SHA-1"), None);
        assert_eq!(
            ScramMechanism::from_type_id(1),
            Some(ScramMechanism::Sha256)
        );
        assert_eq!(
            ScramMechanism::from_type_id(2),
            Some(ScramMechanism::Sha512)
        );
        assert_eq!(ScramMechanism::from_type_id(0), None);
        assert_eq!(ScramMechanism::from_type_id(-1), None);
    }

    #[test]
    fn debug_output_hides_key_material() {
        let shown = format!("{:?}", rfc7677_credential());
        assert_eq!(shown, "ScramCredential { iterations: 4096, .. }");
    }
}
