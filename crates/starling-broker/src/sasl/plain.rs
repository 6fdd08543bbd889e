//! SASL/PLAIN (RFC 4616), server side, as Kafka's `PlainSaslServer`, checked against a users
//! file instead of passwords in a JAAS file.
//!
//! The users file (broker config `sasl.plain.users.file`) has one `user:hash` line per user;
//! blank lines and lines starting with `#` are skipped. A user name may hold any character
//! but a line break (the hash never has a `:`, so a line splits at its last one). The hash is
//! `pbkdf2-sha512$ITERATIONS$SALT$HASH` — PBKDF2-HMAC-SHA512 with `SALT` and `HASH` in
//! standard base64 — which `starling user hash-password` prints ([`users_file_line`]).
//!
//! Authentication does the same PBKDF2 work for an unknown user as for a known one (against
//! a fake hash) and compares in constant time, so the answer and its timing do not tell
//! whether the user exists.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::Sha512;
use subtle::ConstantTimeEq;

use super::{random_bytes, SaslFailure};

/// The mechanism's name.
pub const MECHANISM: &str = "PLAIN";
/// The hash scheme's tag, first field of a hash.
pub const HASH_SCHEME: &str = "pbkdf2-sha512";
/// The iterations `starling user hash-password` uses unless told otherwise (OWASP's
/// recommendation for PBKDF2-HMAC-SHA512).
pub const DEFAULT_ITERATIONS: u32 = 210_000;
/// The fewest iterations a users file may use.
pub const MIN_ITERATIONS: u32 = 10_000;
/// The most iterations a users file may use, so a bad file cannot make every login hang.
pub const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 64;

/// A salted PBKDF2-HMAC-SHA512 hash of a password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Hashes `password` under a fresh random salt.
    pub fn new(password: &[u8], iterations: u32) -> PasswordHash {
        let salt = random_bytes(SALT_LEN);
        let hash = pbkdf2_sha512(password, &salt, iterations);
        PasswordHash {
            iterations,
            salt,
            hash,
        }
    }

    /// Parses `pbkdf2-sha512$ITERATIONS$SALT$HASH`.
    pub fn parse(text: &str) -> Result<PasswordHash, String> {
        let fields: Vec<&str> = text.split('$').collect();
        let [scheme, iterations, salt, hash] = fields[..] else {
            return Err(format!(
                "a hash has four fields, {HASH_SCHEME}$ITERATIONS$SALT$HASH"
            ));
        };
        if scheme != HASH_SCHEME {
            return Err(format!(
                "unknown hash scheme {scheme:?} (Starling reads {HASH_SCHEME})"
            ));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("iterations {iterations:?} is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "iterations {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|e| format!("the salt is not base64: {e}"))?;
        if salt.is_empty() {
            return Err("the salt is empty".into());
        }
        let hash = STANDARD
            .decode(hash)
            .map_err(|e| format!("the hash is not base64: {e}"))?;
        if hash.len() != HASH_LEN {
            return Err(format!(
                "the hash has {} bytes, PBKDF2-HMAC-SHA512 gives {HASH_LEN}",
                hash.len()
            ));
        }
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` hashes to this hash; compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        pbkdf2_sha512(password, &self.salt, self.iterations)
            .ct_eq(&self.hash)
            .into()
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

impl std::fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{HASH_SCHEME}${}${}${}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.hash)
        )
    }
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

/// The users file line for `user` with `password`: `user:pbkdf2-sha512$…`.
pub fn users_file_line(user: &str, password: &[u8], iterations: u32) -> Result<String, String> {
    if user.is_empty() || user.contains(['\n', '\r']) || user.starts_with('#') {
        return Err("a user name must be non-empty, on one line, and not start with #".into());
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "iterations {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
        ));
    }
    Ok(format!(
        "{user}:{}",
        PasswordHash::new(password, iterations)
    ))
}

/// The users PLAIN authenticates, with their password hashes.
#[derive(Debug)]
pub struct PlainUsers {
    users: HashMap<String, PasswordHash>,
    /// What an unknown user's password is checked against: as costly as the dearest real one.
    fake: PasswordHash,
}

impl PlainUsers {
    /// Reads a users file.
    pub fn load(path: &Path) -> Result<PlainUsers, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the PLAIN users file {}: {e}", path.display()))?;
        PlainUsers::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a users file's text; an error names the line.
    pub fn parse(text: &str) -> Result<PlainUsers, String> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .rsplit_once(':')
                .ok_or_else(|| format!("line {number}: expected user:hash"))?;
            if user.is_empty() {
                return Err(format!("line {number}: the user name is empty"));
            }
            let hash = PasswordHash::parse(hash).map_err(|e| format!("line {number}: {e}"))?;
            if users.insert(user.to_string(), hash).is_some() {
                return Err(format!("line {number}: user {user:?} is listed twice"));
            }
        }
        let iterations = users
            .values()
            .map(PasswordHash::iterations)
            .max()
            .unwrap_or(DEFAULT_ITERATIONS);
        let fake = PasswordHash::new(&random_bytes(16), iterations);
        Ok(PlainUsers { users, fake })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks one PLAIN message `authzid NUL authcid NUL passwd`; returns the authenticated
    /// user, or Kafka's failure.
    pub fn authenticate(&self, message: &[u8]) -> Result<String, SaslFailure> {
        let tokens = split_tokens(message);
        if tokens.len() != 3 {
            return Err(SaslFailure::told(format!(
                "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
                tokens.len()
            )));
        }
        let (authzid, user, password) = (tokens[0], tokens[1], tokens[2]);
        if user.is_empty() {
            return Err(SaslFailure::hidden(
                MECHANISM,
                "Authentication failed: username not specified",
            ));
        }
        if password.is_empty() {
            return Err(SaslFailure::hidden(
                MECHANISM,
                "Authentication failed: password not specified",
            ));
        }
        let user = std::str::from_utf8(user).ok();
        let known = user.and_then(|u| self.users.get(u));
        let hash = known.unwrap_or(&self.fake);
        let verified = hash.verify(password);
        let Some(user) = user.filter(|_| verified && known.is_some()) else {
            return Err(SaslFailure::told(
                "Authentication failed: Invalid username or password",
            ));
        };
        if !authzid.is_empty() && authzid != user.as_bytes() {
            return Err(SaslFailure::told(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        Ok(user.to_string())
    }
}

/// Splits at NUL into at most four tokens, as Kafka's `PlainSaslServer.extractTokens` (so a
/// message with many NULs reports 4, not how many it has).
fn split_tokens(message: &[u8]) -> Vec<&[u8]> {
    let mut tokens = Vec::with_capacity(4);
    let mut rest = message;
    while tokens.len() < 4 {
        match rest.iter().position(|&b| b == 0) {
            Some(at) => {
                tokens.push(&rest[..at]);
                rest = &rest[at + 1..];
            }
            None => {
                tokens.push(rest);
                break;
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::SaslErrorKind;

    /// Few iterations keep the tests fast; the format is the same.
    const TEST_ITERATIONS: u32 = MIN_ITERATIONS;

    fn users() -> PlainUsers {
        let text = format!(
            "# Starling PLAIN users\n\n{}\n{}\n",
            users_file_line("alice", b"alice-secret", TEST_ITERATIONS).unwrap(),
            users_file_line("bob:the:builder", b"hunter2", TEST_ITERATIONS).unwrap(),
        );
        PlainUsers::parse(&text).unwrap()
    }

    #[test]
    fn the_right_password_authenticates_the_user() {
        let users = users();
        assert_eq!(users.len(), 2);
        assert_eq!(
            users.authenticate(b"\0alice\0alice-secret"),
            Ok("alice".into())
        );
        assert_eq!(
            users.authenticate(b"bob:the:builder\0bob:the:builder\0hunter2"),
            Ok("bob:the:builder".into())
        );
    }

    #[test]
    fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
        let users = users();
        let wrong = users.authenticate(b"\0alice\0nope").unwrap_err();
        let unknown = users.authenticate(b"\0mallory\0alice-secret").unwrap_err();
        assert_eq!(wrong, unknown);
        assert_eq!(
            wrong.client_message,
            "Authentication failed: Invalid username or password"
        );
        assert_eq!(wrong.kind, SaslErrorKind::AuthenticationFailed);
    }

    #[test]
    fn an_authzid_other_than_the_user_is_refused() {
        let failure = users()
            .authenticate(b"admin\0alice\0alice-secret")
            .unwrap_err();
        assert_eq!(
            failure.client_message,
            "Authentication failed: Client requested an authorization id that is different from username"
        );
    }

    #[test]
    fn a_message_without_three_tokens_is_refused_counting_as_kafka() {
        let users = users();
        for (message, count) in [
            (&b"alice"[..], 1),
            (b"\0alice", 2),
            (b"\0alice\0pw\0", 4),
            (b"\0a\0b\0c\0d\0e", 4),
        ] {
            let failure = users.authenticate(message).unwrap_err();
            assert_eq!(
                failure.client_message,
                format!("Invalid SASL/PLAIN response: expected 3 tokens, got {count}")
            );
        }
    }

    #[test]
    fn an_empty_user_or_password_is_refused_with_the_generic_message() {
        let users = users();
        let no_user = users.authenticate(b"\0\0pw").unwrap_err();
        assert_eq!(
            no_user.detail,
            "Authentication failed: username not specified"
        );
        let no_password = users.authenticate(b"\0alice\0").unwrap_err();
        assert_eq!(
            no_password.detail,
            "Authentication failed: password not specified"
        );
        for failure in [no_user, no_password] {
            assert_eq!(
                failure.client_message,
                "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN"
            );
        }
    }

    #[test]
    fn a_user_name_that_is_not_utf8_is_an_unknown_user() {
        let failure = users().authenticate(b"\0\xff\xfe\0pw").unwrap_err();
        assert_eq!(
            failure.client_message,
            "Authentication failed: Invalid username or password"
        );
    }

    #[test]
    fn a_hash_round_trips_through_its_text() {
        let hash = PasswordHash::new(b"pw", TEST_ITERATIONS);
        let text = hash.to_string();
        assert!(text.starts_with("pbkdf2-sha512$10000$"));
        let parsed = PasswordHash::parse(&text).unwrap();
        assert_eq!(parsed, hash);
        assert!(parsed.verify(b"pw"));
        assert!(!parsed.verify(b"pw "));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            PasswordHash::new(b"pw", TEST_ITERATIONS).to_string(),
            PasswordHash::new(b"pw", TEST_ITERATIONS).to_string()
        );
    }

    #[test]
    fn bad_users_files_are_refused_naming_the_line() {
        let good = PasswordHash::new(b"pw", TEST_ITERATIONS).to_string();
        let cases = [
            ("alice".to_string(), "line 1: expected user:hash"),
            (format!(":{good}"), "line 1: the user name is empty"),
            (
                format!("a:{good}\na:{good}"),
                "line 2: user \"a\" is listed twice",
            ),
            (
                "a:plain-text-password".into(),
                "line 1: a hash has four fields",
            ),
            ("a:md5$1$AA==$AA==".into(), "line 1: unknown hash scheme"),
            (
                "a:pbkdf2-sha512$x$AA==$AA==".into(),
                "line 1: iterations \"x\"",
            ),
            (
                "a:pbkdf2-sha512$1$AA==$AA==".into(),
                "line 1: iterations 1 is outside",
            ),
            (
                "a:pbkdf2-sha512$10000$!$AA==".into(),
                "line 1: the salt is not base64",
            ),
            (
                "a:pbkdf2-sha512$10000$AA==$AA==".into(),
                "line 1: the hash has 1 bytes",
            ),
        ];
        for (text, expected) in cases {
            let error = PlainUsers::parse(&text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }

    #[test]
    fn users_file_lines_refuse_names_that_would_break_the_file() {
        assert!(users_file_line("", b"pw", TEST_ITERATIONS).is_err());
        assert!(users_file_line("a\nb", b"pw", TEST_ITERATIONS).is_err());
        assert!(users_file_line("#a", b"pw", TEST_ITERATIONS).is_err());
        assert!(users_file_line("a", b"pw", 1).is_err());
    }

    #[test]
    fn an_empty_file_knows_nobody() {
        let users = PlainUsers::parse("# nobody yet\n").unwrap();
        assert!(users.is_empty());
        assert!(users.authenticate(b"\0alice\0pw").is_err());
    }
}
