//! Who is asking the admin endpoint: bearer tokens from `admin.auth.tokens.file`, HTTP Basic
//! credentials checked against the users Kafka clients log in as, and the answer to a caller
//! who has neither.
//!
//! **Tokens.** `admin.auth.tokens.file` has one `PRINCIPAL:sha256$HASH` line per token (blank
//! lines and `#` comments skipped; the hash never holds a `:`, so a line splits at its last
//! one): the principal the token acts as (`User:ops`) and the SHA-256 of the token, in
//! standard base64. `starling admin-token create` makes a token and its line ([`new_token`],
//! [`tokens_file_line`]); the token itself is never stored. A bearer token carries no user
//! name, so the broker has to compare it with every line: a slow salted hash (as the PLAIN
//! users file has) would cost that much work per line and request, and it protects
//! guessable passwords, which these are not: a token is 256 random bits, and a presented
//! token shorter than [`MIN_TOKEN_LEN`] is refused before it is hashed, so a hand-made line
//! for a short token can never match. The digest is compared with every line in constant
//! time.
//!
//! **Basic.** `Authorization: Basic` (RFC 7617) with a user name and password, when
//! `admin.auth.basic.enable` (the default) is on: the user's SCRAM credentials in the
//! metadata store (AlterUserScramCredentials, `starling user create`; the password is salted
//! again with the stored salt and iterations and the stored key it derives compared in
//! constant time) and the `sasl.plain.users.file` users. Either one matching is enough; the
//! principal is `User:<name>`. An unknown user costs the same kind of work as a known one
//! (the PLAIN file's fake hash, or a SCRAM derivation at the fewest iterations). The work runs
//! on blocking threads, at most [`MAX_CONCURRENT_VERIFICATIONS`] at a time, so a flood of
//! guesses cannot take every core.
//!
//! **Client certificates.** Over HTTPS with `admin.ssl.client.auth`, a certificate the
//! handshake verified names the caller when the request carries no `Authorization` header
//! (whatever `admin.auth` says, as a Kafka SSL listener's principal is its client's
//! certificate): its subject through `ssl.principal.mapping.rules`, as `User:<name>`. A
//! subject no rule maps is refused like wrong credentials.
//!
//! A request without an `Authorization` header (or certificate) is answered 401 with a `WWW-Authenticate`
//! challenge per enabled scheme; one with credentials that do not verify gets the same 401
//! (never saying why), after the delay [`crate::authentication::FailedLogins`] gives its
//! address (the one failed SASL logins share: 100 ms doubled per recent failure, up to 10 s),
//! and is logged with the address, the scheme, the user name for Basic and the reason, never
//! the secret.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Peer;
use crate::config::BrokerConfig;
use crate::quotas::ANONYMOUS;
use crate::sasl::credentials::ScramCredentials;
use crate::sasl::random_bytes;
use crate::sasl::scram::{self, ScramMechanism};
use crate::tls::TlsListener;
use crate::Broker;

/// The token hash scheme's tag, first field of a hash.
pub const TOKEN_HASH_SCHEME: &str = "sha256";
/// What every token `starling admin-token create` makes starts with, so secret scanners and
/// people can tell what it is.
pub const TOKEN_PREFIX: &str = "starling_";
/// The shortest token the endpoint hashes at all (a made token is 52 characters).
pub const MIN_TOKEN_LEN: usize = 32;
/// The longest `Authorization` header value looked at.
const MAX_CREDENTIALS_LEN: usize = 4096;
/// Basic verifications (PBKDF2 work) running at once, across callers.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 2;

/// A fresh token: [`TOKEN_PREFIX`] then 256 random bits in URL-safe base64.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes(32)))
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks a principal as the authorizer takes it: `Type:name`, neither part empty, on one
/// line.
fn check_principal(principal: &str) -> Result<(), String> {
    let (kind, name) = starling_acl::model::parse_principal(principal)?;
    if kind.is_empty() || name.is_empty() || principal.contains(['\n', '\r']) {
        return Err(format!(
            "a principal is Type:name on one line (User:ops), not {principal:?}"
        ));
    }
    if principal.starts_with('#') {
        return Err("a principal must not start with #".into());
    }
    Ok(())
}

/// The tokens file line for `token` acting as `principal`: `principal:sha256$…`.
pub fn tokens_file_line(principal: &str, token: &str) -> Result<String, String> {
    check_principal(principal)?;
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!("a token has at least {MIN_TOKEN_LEN} characters"));
    }
    Ok(format!(
        "{principal}:{TOKEN_HASH_SCHEME}${}",
        STANDARD.encode(token_digest(token))
    ))
}

/// The bearer tokens the endpoint accepts, by the SHA-256 of each, with the principal each
/// acts as.
#[derive(Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokens")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl AdminTokens {
    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<AdminTokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the admin tokens file {}: {e}", path.display()))?;
        AdminTokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a tokens file's text; an error names the line (never its hash).
    pub fn parse(text: &str) -> Result<AdminTokens, String> {
        let mut tokens = Vec::new();
        let mut seen = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (principal, hash) = line.rsplit_once(':').ok_or_else(|| {
                format!("line {number}: expected PRINCIPAL:{TOKEN_HASH_SCHEME}$HASH")
            })?;
            check_principal(principal).map_err(|e| format!("line {number}: {e}"))?;
            let Some(encoded) = hash.strip_prefix(&format!("{TOKEN_HASH_SCHEME}$")) else {
                return Err(format!(
                    "line {number}: a hash is {TOKEN_HASH_SCHEME}$BASE64 (as starling admin-token create prints)"
                ));
            };
            let digest = STANDARD
                .decode(encoded)
                .map_err(|e| format!("line {number}: the hash is not base64: {e}"))?;
            let digest: [u8; 32] = digest.try_into().map_err(|d: Vec<u8>| {
                format!(
                    "line {number}: the hash has {} bytes, SHA-256 gives 32",
                    d.len()
                )
            })?;
            if !seen.insert(digest) {
                return Err(format!("line {number}: the same token is listed twice"));
            }
            tokens.push((principal.to_string(), digest));
        }
        Ok(AdminTokens { tokens })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The principal `token` acts as, if it is one of the file's; compared with every line in
    /// constant time.
    pub fn principal(&self, token: &str) -> Option<&str> {
        if token.len() < MIN_TOKEN_LEN {
            return None;
        }
        let digest = token_digest(token);
        let mut found = None;
        for (principal, hash) in &self.tokens {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(principal.as_str());
            }
        }
        found
    }
}

/// What an `Authorization` header carries.
#[derive(PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user:?}, ..)"),
        }
    }
}

impl Credentials {
    /// Parses an `Authorization` value (the scheme case-insensitively, RFC 9110); `Err` says
    /// why it is unusable, for the log.
    pub fn parse(value: &[u8]) -> Result<Credentials, &'static str> {
        if value.len() > MAX_CREDENTIALS_LEN {
            return Err("the Authorization header is too long");
        }
        let value =
            std::str::from_utf8(value).map_err(|_| "the Authorization header is not UTF-8")?;
        let (scheme, rest) = value
            .trim()
            .split_once(' ')
            .ok_or("the Authorization header has no credentials after its scheme")?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err("a malformed bearer token");
            }
            Ok(Credentials::Bearer(rest.to_string()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode(rest)
                .map_err(|_| "Basic credentials that are not base64")?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| "Basic credentials that are not UTF-8")?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or("Basic credentials without a ':' between user and password")?;
            if user.is_empty() || password.is_empty() {
                return Err("Basic credentials with an empty user or password");
            }
            Ok(Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            })
        } else {
            Err("an unsupported authentication scheme")
        }
    }
}

/// The endpoint's authentication: what `admin.auth*` configure, loaded at start.
pub struct AdminAuth {
    required: bool,
    tokens: Option<AdminTokens>,
    basic: bool,
    verifications: tokio::sync::Semaphore,
    /// The HTTPS endpoint's TLS, whose mapping rules name certificate holders.
    certificates: Option<Arc<TlsListener>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("required", &self.required)
            .field("tokens", &self.tokens)
            .field("basic", &self.basic)
            .finish_non_exhaustive()
    }
}

/// Who a request comes from, once authenticated (or, with authentication off, `User:ANONYMOUS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `Type:name`, as the authorizer takes it.
    pub principal: String,
    pub ip: IpAddr,
}

impl Caller {
    pub fn anonymous(ip: IpAddr) -> Caller {
        Caller {
            principal: format!("User:{ANONYMOUS}"),
            ip,
        }
    }
}

impl AdminAuth {
    /// The authentication `config` asks for, its tokens file read.
    pub fn from_config(config: &BrokerConfig) -> Result<AdminAuth, String> {
        let tokens = match &config.admin_auth_tokens_file {
            Some(path) => Some(AdminTokens::load(path)?),
            None => None,
        };
        Ok(AdminAuth::new(
            config.admin_auth_required(),
            tokens,
            config.admin_auth_basic_enable,
        ))
    }

    pub fn new(required: bool, tokens: Option<AdminTokens>, basic: bool) -> AdminAuth {
        AdminAuth {
            required,
            tokens,
            basic,
            verifications: tokio::sync::Semaphore::new(MAX_CONCURRENT_VERIFICATIONS),
            certificates: None,
        }
    }

    /// Lets verified client certificates of the HTTPS endpoint `tls` name callers.
    pub fn with_certificates(mut self, tls: Arc<TlsListener>) -> AdminAuth {
        self.certificates = Some(tls);
        self
    }

    /// No authentication: every caller is `User:ANONYMOUS`.
    pub fn off() -> AdminAuth {
        AdminAuth::new(false, None, false)
    }

    pub fn required(&self) -> bool {
        self.required
    }

    /// Who sent a request with `headers` from `peer`: `Ok(None)` when authentication is on
    /// and the request carries no credentials (see [`AdminAuth::challenge`]); `Err` is the 401
    /// for credentials that do not verify, answered after the address's delay.
    pub async fn caller(
        &self,
        broker: &Arc<Broker>,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Option<Caller>, Response> {
        let ip = peer.addr.ip();
        let header = headers.get(AUTHORIZATION).filter(|_| self.required);
        if let (None, Some(certificate), Some(tls)) =
            (header, &peer.certificate, &self.certificates)
        {
            return match tls.certificate_principal(certificate) {
                Ok(principal) => Ok(Some(Caller {
                    principal: format!("User:{}", principal.user),
                    ip,
                })),
                Err(reason) => Err(self.refuse(broker, ip, "certificate", None, &reason).await),
            };
        }
        if !self.required {
            return Ok(Some(Caller::anonymous(ip)));
        }
        let Some(value) = header else {
            return Ok(None);
        };
        let (scheme, user, outcome) = match Credentials::parse(value.as_bytes()) {
            Err(why) => ("unknown", None, Err(why)),
            Ok(Credentials::Bearer(token)) => ("bearer", None, self.bearer(&token)),
            Ok(Credentials::Basic { user, password }) => {
                let outcome = self.basic(broker, &user, password).await;
                ("basic", Some(user), outcome)
            }
        };
        match outcome {
            Ok(principal) => Ok(Some(Caller { principal, ip })),
            Err(reason) => Err(self
                .refuse(broker, ip, scheme, user.as_deref(), reason)
                .await),
        }
    }

    /// The 401 for credentials that did not verify, logged and held for the address's delay.
    async fn refuse(
        &self,
        broker: &Broker,
        ip: IpAddr,
        scheme: &str,
        user: Option<&str>,
        reason: &str,
    ) -> Response {
        tracing::warn!(
            %ip,
            scheme,
            user = user.unwrap_or("-"),
            reason,
            "admin endpoint: authentication failed"
        );
        let hold = broker.failed_logins.failed(ip, std::time::Instant::now());
        tokio::time::sleep(hold).await;
        self.challenge()
    }

    fn bearer(&self, token: &str) -> Result<String, &'static str> {
        let tokens = self
            .tokens
            .as_ref()
            .ok_or("a bearer token, and no admin.auth.tokens.file is configured")?;
        tokens
            .principal(token)
            .map(str::to_string)
            .ok_or("an unknown bearer token")
    }

    async fn basic(
        &self,
        broker: &Arc<Broker>,
        user: &str,
        password: String,
    ) -> Result<String, &'static str> {
        if !self.basic {
            return Err("Basic credentials, and admin.auth.basic.enable is false");
        }
        let Ok(_permit) = self.verifications.acquire().await else {
            return Err("the broker is shutting down");
        };
        // PBKDF2 and the store read belong on a blocking thread, not on an async worker.
        let broker = broker.clone();
        let name = user.to_string();
        let verified = tokio::task::spawn_blocking(move || {
            let plain = match (&broker.plain_users, plain_message(&name, &password)) {
                (Some(users), Some(message)) => users.authenticate(&message).is_ok(),
                _ => false,
            };
            let scram = verify_scram(
                &broker.scram,
                &name,
                password.as_bytes(),
                broker.plain_users.is_none(),
            );
            plain || scram
        })
        .await
        .unwrap_or(false);
        if verified {
            Ok(format!("User:{user}"))
        } else {
            Err("a wrong user name or password")
        }
    }

    /// The 401 for a request without usable credentials: a challenge per enabled scheme.
    pub fn challenge(&self) -> Response {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(super::ErrorJson {
                error: "authentication required".into(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.tokens.is_some() {
            headers.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"starling-admin\""),
            );
        }
        if self.basic {
            headers.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"starling-admin\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// The SASL/PLAIN message for `user` and `password`, which [`crate::sasl::plain::PlainUsers`]
/// checks; `None` when either holds a NUL (it could not be a PLAIN user's).
fn plain_message(user: &str, password: &str) -> Option<Vec<u8>> {
    if user.contains('\0') || password.contains('\0') {
        return None;
    }
    let mut message = Vec::with_capacity(2 + user.len() + password.len());
    message.push(0);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(password.as_bytes());
    Some(message)
}

/// Whether `password` is `user`'s for any SCRAM mechanism it has: salted again with the stored
/// salt and iterations, the derived stored key compared in constant time. A user without a
/// credential costs one derivation at the fewest iterations when `fake_if_unknown` (no other
/// check does the work that hides whether the user exists).
pub fn verify_scram(
    credentials: &ScramCredentials,
    user: &str,
    password: &[u8],
    fake_if_unknown: bool,
) -> bool {
    let mut any = false;
    let mut verified = false;
    for mechanism in ScramMechanism::ALL {
        let Some(credential) = credentials.lookup(user, mechanism) else {
            continue;
        };
        any = true;
        let salted = mechanism.salted_password(password, &credential.salt, credential.iterations);
        let derived = scram::credential_from_salted_password(
            mechanism,
            &credential.salt,
            &salted,
            credential.iterations,
        );
        if bool::from(derived.stored_key.ct_eq(&credential.stored_key)) {
            verified = true;
        }
    }
    if !any && fake_if_unknown {
        let salt = random_bytes(32);
        let _ =
            ScramMechanism::Sha256.salted_password(password, &salt, scram::MIN_ITERATIONS as u32);
    }
    verified
}

#[cfg(test)]
mod tests {
    use starling_meta::MetadataStore;

    use super::*;
    use crate::sasl::credentials::Upsertion;
    use crate::sasl::plain::{users_file_line, PlainUsers, MIN_ITERATIONS};

    fn basic(user: &str, password: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))).into_bytes()
    }

    #[test]
    fn a_made_token_is_long_random_and_its_line_admits_only_it() {
        let token = new_token();
        assert!(
            token.starts_with(TOKEN_PREFIX) && token.len() == 52,
            "{token}"
        );
        assert_ne!(token, new_token());
        let line = tokens_file_line("User:ops", &token).unwrap();
        assert!(line.starts_with("User:ops:sha256$"), "{line}");
        assert!(!line.contains(&token[TOKEN_PREFIX.len()..]));
        let other = new_token();
        let text = format!(
            "# admin tokens\n\n{line}\n{}\n",
            tokens_file_line("User:grafana:eu", &other).unwrap()
        );
        let tokens = AdminTokens::parse(&text).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.principal(&token), Some("User:ops"));
        assert_eq!(tokens.principal(&other), Some("User:grafana:eu"));
        assert_eq!(tokens.principal(&new_token()), None);
        assert_eq!(tokens.principal(&token[..token.len() - 1]), None);
        assert_eq!(tokens.principal(""), None);
    }

    #[test]
    fn a_short_token_never_matches_even_when_its_hash_is_listed() {
        let short = "hunter2";
        let line = format!("User:weak:sha256${}", STANDARD.encode(token_digest(short)));
        let tokens = AdminTokens::parse(&line).unwrap();
        assert_eq!(tokens.principal(short), None);
        assert!(tokens_file_line("User:weak", short).is_err());
    }

    #[test]
    fn bad_tokens_files_are_refused_naming_the_line() {
        let good = tokens_file_line("User:ops", &new_token()).unwrap();
        let hash = good.rsplit_once(':').unwrap().1.to_string();
        let cases = [
            (
                "User-ops".to_string(),
                "line 1: expected PRINCIPAL:sha256$HASH",
            ),
            (format!("ops:{hash}"), "line 1: expected a string in format"),
            (format!("User::{hash}"), "line 1: a principal is Type:name"),
            (format!(":ops:{hash}"), "line 1: a principal is Type:name"),
            (
                "User:ops:plain-token".into(),
                "line 1: a hash is sha256$BASE64",
            ),
            (
                "User:ops:sha256$!!".into(),
                "line 1: the hash is not base64",
            ),
            (
                "User:ops:sha256$AAAA".into(),
                "line 1: the hash has 3 bytes",
            ),
            (
                format!("{good}\nUser:other:{hash}"),
                "line 2: the same token is listed twice",
            ),
        ];
        for (text, expected) in cases {
            let error = AdminTokens::parse(&text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
            assert!(!error.contains(&hash[7..]), "{error}");
        }
        assert!(tokens_file_line("ops", &new_token()).is_err());
        assert!(tokens_file_line("User:a\nb", &new_token()).is_err());
    }

    #[test]
    fn authorization_headers_parse_bearer_and_basic_and_refuse_the_rest() {
        assert_eq!(
            Credentials::parse(b"Bearer abc.def"),
            Ok(Credentials::Bearer("abc.def".into()))
        );
        assert_eq!(
            Credentials::parse(b"bearer   abc"),
            Ok(Credentials::Bearer("abc".into()))
        );
        assert_eq!(
            Credentials::parse(&basic("alice", "pa:ss word")),
            Ok(Credentials::Basic {
                user: "alice".into(),
                password: "pa:ss word".into()
            })
        );
        for (value, why) in [
            (
                &b"Bearer"[..],
                "the Authorization header has no credentials after its scheme",
            ),
            (b"Bearer a b", "a malformed bearer token"),
            (b"Basic !!!", "Basic credentials that are not base64"),
            (
                b"Basic YWxpY2U=",
                "Basic credentials without a ':' between user and password",
            ),
            (
                b"Basic YWxpY2U6",
                "Basic credentials with an empty user or password",
            ),
            (b"Digest username=x", "an unsupported authentication scheme"),
            (b"Bearer \xff\xfe", "the Authorization header is not UTF-8"),
        ] {
            assert_eq!(Credentials::parse(value), Err(why), "{value:?}");
        }
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIALS_LEN));
        assert!(Credentials::parse(long.as_bytes()).is_err());
        // The password never shows in a debug print.
        let debug = format!(
            "{:?}",
            Credentials::parse(&basic("alice", "s3cret")).unwrap()
        );
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[tokio::test]
    async fn basic_passwords_verify_against_stored_scram_credentials_of_either_mechanism() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
        let store = ScramCredentials::open(std::sync::Arc::new(store).into())
            .await
            .unwrap();
        let upsert = |user: &str, mechanism: ScramMechanism, password: &[u8]| {
            let salt = scram::new_salt(mechanism);
            let salted = mechanism.salted_password(password, &salt, 4096);
            Upsertion {
                user: user.into(),
                mechanism: mechanism.type_id(),
                iterations: 4096,
                salt,
                salted_password: salted,
            }
        };
        let results = store
            .alter(
                &[],
                &[
                    upsert("alice", ScramMechanism::Sha256, b"alice-pw"),
                    upsert("bob", ScramMechanism::Sha512, b"bob-pw"),
                ],
            )
            .await
            .unwrap();
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        assert!(verify_scram(&store, "alice", b"alice-pw", true));
        assert!(verify_scram(&store, "bob", b"bob-pw", true));
        assert!(!verify_scram(&store, "alice", b"bob-pw", true));
        assert!(!verify_scram(&store, "alice", b"alice-pw ", true));
        assert!(!verify_scram(&store, "carol", b"alice-pw", true));
    }

    #[test]
    fn basic_passwords_verify_against_the_plain_users_file_through_its_message() {
        let line = users_file_line("carol", b"carol-pw", MIN_ITERATIONS).unwrap();
        let users = PlainUsers::parse(&line).unwrap();
        let check = |user: &str, password: &str| {
            plain_message(user, password).is_some_and(|m| users.authenticate(&m).is_ok())
        };
        assert!(check("carol", "carol-pw"));
        assert!(!check("carol", "nope"));
        assert!(!check("dave", "carol-pw"));
        assert!(!check("carol\0carol", "carol-pw"));
        assert_eq!(plain_message("a", "b\0c"), None);
    }

    #[test]
    fn the_challenge_names_each_enabled_scheme_and_nothing_else() {
        let tokens = AdminTokens::default();
        let both = AdminAuth::new(true, Some(tokens.clone()), true).challenge();
        assert_eq!(both.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<&str> = both
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            challenges,
            [
                "Bearer realm=\"starling-admin\"",
                "Basic realm=\"starling-admin\", charset=\"UTF-8\""
            ]
        );
        let bearer_only = AdminAuth::new(true, Some(tokens), false).challenge();
        assert_eq!(
            bearer_only
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .count(),
            1
        );
    }
}
