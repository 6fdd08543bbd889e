//! SCRAM credentials (KIP-554): DescribeUserScramCredentials and AlterUserScramCredentials,
//! sent to the bootstrap broker, as Kafka's `Admin.describeUserScramCredentials` /
//! `alterUserScramCredentials` do. The password never leaves the client: it salts it here
//! (PBKDF2 with the mechanism's HMAC, RFC 5802's `Hi`) and sends the salt and the salted
//! password, as `kafka-configs --alter --add-config 'SCRAM-SHA-256=[password=…]'` does.

use std::ops::RangeInclusive;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::TopicError;
use crate::client::{check, err, Client};
use crate::error::{Error, Result};

const DESCRIBE_USER_SCRAM_CREDENTIALS: RangeInclusive<i16> = 0..=0;
const ALTER_USER_SCRAM_CREDENTIALS: RangeInclusive<i16> = 0..=0;

/// The iterations a credential gets unless told otherwise (Kafka's admin client default).
pub const DEFAULT_ITERATIONS: i32 = 4096;

pub use starling_protocol::scram::ScramMechanism;

/// One user's credentials as described: (mechanism, iterations) pairs, or the broker's
/// error for that user (RESOURCE_NOT_FOUND when it has none). A mechanism number the client
/// does not know is left out.
#[derive(Debug, Clone, PartialEq)]
pub struct UserScramCredentials {
    pub user: String,
    pub credentials: std::result::Result<Vec<(ScramMechanism, i32)>, TopicError>,
}

/// One change to a user's credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum ScramAlteration {
    /// Set the credential for `mechanism` from `password` (salted here).
    Upsert {
        user: String,
        mechanism: ScramMechanism,
        iterations: i32,
        password: Vec<u8>,
    },
    /// Remove the credential for `mechanism`.
    Delete {
        user: String,
        mechanism: ScramMechanism,
    },
}

impl std::fmt::Debug for ScramAlteration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramAlteration::Upsert {
                user,
                mechanism,
                iterations,
                ..
            } => write!(f, "Upsert({user}, {mechanism}, {iterations} iterations)"),
            ScramAlteration::Delete { user, mechanism } => {
                write!(f, "Delete({user}, {mechanism})")
            }
        }
    }
}

/// The broker's answer for one altered user.
pub type ScramAlterResult = (String, std::result::Result<(), TopicError>);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A fresh random salt, as long as the mechanism's hash.
fn new_salt(mechanism: ScramMechanism) -> Result<Vec<u8>> {
    let mut salt = vec![0u8; mechanism.hash_len()];
    getrandom::fill(&mut salt)
        .map_err(|e| Error::Protocol(format!("no random salt from the operating system: {e}")))?;
    Ok(salt)
}

impl Client {
    /// The SCRAM credentials of `users` (every user with one when `None` or empty), one entry
    /// per user the broker answered.
    pub async fn describe_user_scram_credentials(
        &mut self,
        users: Option<&[String]>,
    ) -> Result<Vec<UserScramCredentials>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(
            ApiKey::DescribeUserScramCredentials,
            DESCRIBE_USER_SCRAM_CREDENTIALS,
        )?;
        let request =
            DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
                users
                    .iter()
                    .map(|u| UserName::default().with_name(s(u)))
                    .collect()
            }));
        let response = conn.send(version, &request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "DescribeUserScramCredentials".to_string(),
        )?;
        Ok(response
            .results
            .iter()
            .map(|r| UserScramCredentials {
                user: r.user.to_string(),
                credentials: match err(r.error_code) {
                    None => Ok(r
                        .credential_infos
                        .iter()
                        .filter_map(|c| {
                            ScramMechanism::from_type_id(c.mechanism).map(|m| (m, c.iterations))
                        })
                        .collect()),
                    Some(error) => Err(TopicError {
                        error,
                        message: r.error_message.as_ref().map(|m| m.to_string()),
                    }),
                },
            })
            .collect())
    }

    /// Sets and removes SCRAM credentials; one result per user the broker answered.
    pub async fn alter_user_scram_credentials(
        &mut self,
        alterations: &[ScramAlteration],
    ) -> Result<Vec<ScramAlterResult>> {
        let mut deletions = Vec::new();
        let mut upsertions = Vec::new();
        for alteration in alterations {
            match alteration {
                ScramAlteration::Delete { user, mechanism } => deletions.push(
                    ScramCredentialDeletion::default()
                        .with_name(s(user))
                        .with_mechanism(mechanism.type_id()),
                ),
                ScramAlteration::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => {
                    let salt = new_salt(*mechanism)?;
                    // The broker refuses iterations outside its bounds; salting with a
                    // nonsensical count here would only waste time.
                    let rounds = u32::try_from(*iterations).unwrap_or(1).max(1);
                    let salted = mechanism.salted_password(password, &salt, rounds);
                    upsertions.push(
                        ScramCredentialUpsertion::default()
                            .with_name(s(user))
                            .with_mechanism(mechanism.type_id())
                            .with_iterations(*iterations)
                            .with_salt(Bytes::from(salt))
                            .with_salted_password(Bytes::from(salted)),
                    );
                }
            }
        }
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(
            ApiKey::AlterUserScramCredentials,
            ALTER_USER_SCRAM_CREDENTIALS,
        )?;
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions);
        let response = conn.send(version, &request).await?;
        Ok(response
            .results
            .iter()
            .map(|r| {
                let result = match err(r.error_code) {
                    None => Ok(()),
                    Some(error) => Err(TopicError {
                        error,
                        message: r.error_message.as_ref().map(|m| m.to_string()),
                    }),
                };
                (r.user.to_string(), result)
            })
            .collect())
    }
}
