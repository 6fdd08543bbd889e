//! The SCRAM credentials users have, as DescribeUserScramCredentials and
//! AlterUserScramCredentials see them (KIP-554), kept in the metadata storage; and the lookup
//! the SCRAM exchange needs.
//!
//! [`ScramCredentials`] holds every credential in memory, loaded at start and changed after
//! each durable write, as Kafka's brokers keep their credential cache: the exchange looks a
//! user up without a round trip to the store (which, with PostgreSQL, is a network away).
//!
//! Validation follows Kafka's `ScramControlManager` (alter) and `ScramImage.describe`
//! (describe): the same checks in the same order, the same error codes and messages. One
//! alteration request is applied in one durable write, after every check, or not at all.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;
use parking_lot::RwLock;
use starling_meta::backend::MetadataBackend;
use starling_meta::{MetaError, ScramCredentialChange, ScramCredentialRecord};

use crate::storage::MetadataStorage;

use super::scram::{
    credential_from_salted_password, ScramCredential, ScramMechanism, MAX_ITERATIONS,
    MIN_ITERATIONS,
};

/// Kafka's message for a user named more than once in one alteration.
pub const ALTERED_TWICE: &str = "A user credential cannot be altered twice in the same request";

/// The outcome for one user: `Ok` or an error code with Kafka's message.
pub type UserResult = Result<(), (ResponseError, String)>;

/// One user as DescribeUserScramCredentials answers: its (mechanism, iterations), or an error.
pub type DescribedUser = (
    String,
    Result<Vec<(ScramMechanism, i32)>, (ResponseError, String)>,
);

/// A credential to remove, as the request has it (the mechanism is Kafka's type number).
#[derive(Debug, Clone)]
pub struct Deletion {
    pub user: String,
    pub mechanism: i8,
}

/// A credential to set, as the request has it.
#[derive(Clone)]
pub struct Upsertion {
    pub user: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

impl std::fmt::Debug for Upsertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upsertion")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Credentials by user, then mechanism name.
type Cached = BTreeMap<String, BTreeMap<String, ScramCredentialRecord>>;

/// Every stored credential, by user and mechanism.
async fn stored_credentials(store: &MetadataStorage) -> Result<Cached, MetaError> {
    let mut cached = Cached::new();
    for record in store.scram_credentials().await? {
        cached
            .entry(record.user.clone())
            .or_default()
            .insert(record.mechanism.clone(), record);
    }
    Ok(cached)
}

/// Every user's SCRAM credentials: stored in the metadata storage, served from memory.
pub struct ScramCredentials {
    store: MetadataStorage,
    cached: RwLock<Cached>,
    /// Serialises alterations: each validates against what is stored, then writes.
    altering: tokio::sync::Mutex<()>,
}

impl ScramCredentials {
    /// Loads every stored credential.
    pub async fn open(store: MetadataStorage) -> Result<ScramCredentials, MetaError> {
        let cached = stored_credentials(&store).await?;
        Ok(ScramCredentials {
            store,
            cached: RwLock::new(cached),
            altering: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes in the credentials other nodes sharing the storage altered (PostgreSQL).
    pub async fn follow_stored(&self) -> Result<(), MetaError> {
        let _altering = self.altering.lock().await;
        let stored = stored_credentials(&self.store).await?;
        *self.cached.write() = stored;
        Ok(())
    }

    /// The credential of `user` for `mechanism`, in the form the exchange uses.
    pub fn lookup(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let cached = self.cached.read();
        let record = cached.get(user)?.get(mechanism.name())?;
        Some(ScramCredential {
            salt: record.salt.clone(),
            stored_key: record.stored_key.clone(),
            server_key: record.server_key.clone(),
            iterations: record.iterations,
        })
    }

    /// Applies an AlterUserScramCredentials request: one result per user named, successful
    /// deletions first, then successful upsertions, then errors (each group in request order).
    /// `Err` is a failed write: nothing changed.
    pub async fn alter(
        &self,
        deletions: &[Deletion],
        upsertions: &[Upsertion],
    ) -> Result<Vec<(String, UserResult)>, MetaError> {
        let _altering = self.altering.lock().await;
        let (results, changes) = plan(&self.cached.read(), deletions, upsertions);
        if changes.is_empty() {
            return Ok(results);
        }
        self.store.write_scram_credentials(&changes).await?;
        let mut cached = self.cached.write();
        for change in changes {
            match change.credential {
                Some(record) => {
                    cached
                        .entry(change.user)
                        .or_default()
                        .insert(change.mechanism, record);
                }
                None => {
                    if let Some(mechanisms) = cached.get_mut(&change.user) {
                        mechanisms.remove(&change.mechanism);
                        if mechanisms.is_empty() {
                            cached.remove(&change.user);
                        }
                    }
                }
            }
        }
        Ok(results)
    }

    /// Answers a DescribeUserScramCredentials request: `None` or an empty list describes every
    /// user with a credential (by name); otherwise each distinct user named, in request order.
    pub fn describe(&self, users: Option<&[String]>) -> Vec<DescribedUser> {
        describe(&self.cached.read(), users)
    }
}

/// Checks a user name and mechanism as Kafka's `validateScramUsernameAndMechanism`.
fn check_user_and_mechanism(
    user: &str,
    mechanism: i8,
) -> Result<ScramMechanism, (ResponseError, String)> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    ScramMechanism::from_type_id(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".into(),
    ))
}

fn check_upsertion(u: &Upsertion) -> Result<ScramMechanism, (ResponseError, String)> {
    let mechanism = check_user_and_mechanism(&u.user, u.mechanism)?;
    if u.iterations < MIN_ITERATIONS {
        return Err((
            ResponseError::UnacceptableCredential,
            "Too few iterations".into(),
        ));
    }
    if u.iterations > MAX_ITERATIONS {
        return Err((
            ResponseError::UnacceptableCredential,
            "Too many iterations".into(),
        ));
    }
    // Kafka fails deep in its HMAC on an empty key; Starling says why.
    if u.salted_password.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Salted password must not be empty".into(),
        ));
    }
    if u.salt.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Salt must not be empty".into(),
        ));
    }
    Ok(mechanism)
}

/// An AlterUserScramCredentials request checked against `cached`: its results, and the changes
/// to store for it.
fn plan(
    cached: &Cached,
    deletions: &[Deletion],
    upsertions: &[Upsertion],
) -> (Vec<(String, UserResult)>, Vec<ScramCredentialChange>) {
    let mut errors: Vec<(String, (ResponseError, String))> = Vec::new();
    let errored = |errors: &Vec<(String, (ResponseError, String))>, user: &str| {
        errors.iter().any(|(u, _)| u == user)
    };
    let mut to_delete: Vec<(String, ScramMechanism)> = Vec::new();
    let mut to_upsert: Vec<(&Upsertion, ScramMechanism)> = Vec::new();
    let duplicate = || (ResponseError::DuplicateResource, ALTERED_TWICE.to_string());

    for d in deletions {
        if errored(&errors, &d.user) {
            continue;
        }
        if let Some(at) = to_delete.iter().position(|(u, _)| *u == d.user) {
            to_delete.remove(at);
            errors.push((d.user.clone(), duplicate()));
            continue;
        }
        let checked = check_user_and_mechanism(&d.user, d.mechanism).and_then(|mechanism| {
            match cached.get(&d.user).and_then(|m| m.get(mechanism.name())) {
                Some(_) => Ok(mechanism),
                None => Err((
                    ResponseError::ResourceNotFound,
                    "Attempt to delete a user credential that does not exist".into(),
                )),
            }
        });
        match checked {
            Ok(mechanism) => to_delete.push((d.user.clone(), mechanism)),
            Err(error) => errors.push((d.user.clone(), error)),
        }
    }
    for u in upsertions {
        if errored(&errors, &u.user) {
            continue;
        }
        let deleted = to_delete.iter().position(|(user, _)| *user == u.user);
        let upserted = to_upsert.iter().position(|(o, _)| o.user == u.user);
        if deleted.is_some() || upserted.is_some() {
            if let Some(at) = deleted {
                to_delete.remove(at);
            }
            if let Some(at) = upserted {
                to_upsert.remove(at);
            }
            errors.push((u.user.clone(), duplicate()));
            continue;
        }
        match check_upsertion(u) {
            Ok(mechanism) => to_upsert.push((u, mechanism)),
            Err(error) => errors.push((u.user.clone(), error)),
        }
    }

    let mut changes: Vec<ScramCredentialChange> = to_delete
        .iter()
        .map(|(user, mechanism)| ScramCredentialChange {
            user: user.clone(),
            mechanism: mechanism.name().into(),
            credential: None,
        })
        .collect();
    for (u, mechanism) in &to_upsert {
        // Iterations are within 4096..=16384 here.
        let iterations = u.iterations as u32;
        let credential =
            credential_from_salted_password(*mechanism, &u.salt, &u.salted_password, iterations);
        changes.push(ScramCredentialChange {
            user: u.user.clone(),
            mechanism: mechanism.name().into(),
            credential: Some(ScramCredentialRecord {
                user: u.user.clone(),
                mechanism: mechanism.name().into(),
                salt: credential.salt,
                stored_key: credential.stored_key,
                server_key: credential.server_key,
                iterations,
            }),
        });
    }
    let mut results: Vec<(String, UserResult)> = Vec::new();
    results.extend(to_delete.into_iter().map(|(user, _)| (user, Ok(()))));
    results.extend(to_upsert.into_iter().map(|(u, _)| (u.user.clone(), Ok(()))));
    results.extend(errors.into_iter().map(|(user, error)| (user, Err(error))));
    (results, changes)
}

/// Describes the users of `cached` a DescribeUserScramCredentials request names.
fn describe(cached: &Cached, users: Option<&[String]>) -> Vec<DescribedUser> {
    let mut by_user: BTreeMap<String, Vec<(ScramMechanism, i32)>> = BTreeMap::new();
    for record in cached.values().flat_map(BTreeMap::values) {
        if let Some(mechanism) = ScramMechanism::from_name(&record.mechanism) {
            by_user.entry(record.user.clone()).or_default().push((
                mechanism,
                i32::try_from(record.iterations).unwrap_or(i32::MAX),
            ));
        }
    }
    let requested = match users {
        Some(users) if !users.is_empty() => users,
        _ => {
            return by_user
                .into_iter()
                .map(|(user, infos)| (user, Ok(infos)))
                .collect()
        }
    };
    let mut times_named: HashMap<&str, usize> = HashMap::new();
    for user in requested {
        *times_named.entry(user.as_str()).or_default() += 1;
    }
    let mut answered: Vec<DescribedUser> = Vec::new();
    for user in requested {
        if answered.iter().any(|(u, _)| u == user) {
            continue;
        }
        let result = if times_named[user.as_str()] > 1 {
            Err((
                ResponseError::DuplicateResource,
                format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                ),
            ))
        } else {
            match by_user.get(user) {
                Some(infos) => Ok(infos.clone()),
                None => Err((
                    ResponseError::ResourceNotFound,
                    format!("Attempt to describe a user credential that does not exist: {user}"),
                )),
            }
        };
        answered.push((user.clone(), result));
    }
    answered
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use starling_meta::MetadataStore;

    use super::*;
    use crate::sasl::scram::new_salt;

    async fn store() -> (tempfile::TempDir, ScramCredentials) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
        let credentials = ScramCredentials::open(Arc::new(store).into())
            .await
            .unwrap();
        (dir, credentials)
    }

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Upsertion {
        Upsertion {
            user: user.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: vec![7; 32],
        }
    }

    fn delete(user: &str, mechanism: i8) -> Deletion {
        Deletion {
            user: user.into(),
            mechanism,
        }
    }

    fn codes(results: &[(String, UserResult)]) -> Vec<(&str, i16)> {
        results
            .iter()
            .map(|(u, r)| {
                (
                    u.as_str(),
                    r.as_ref().map_or_else(|(e, _)| e.code(), |()| 0),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn an_upserted_credential_is_described_and_looked_up() {
        let (_dir, store) = store().await;
        let results = store.alter(&[], &[upsert("alice", 1, 4096)]).await.unwrap();
        assert_eq!(codes(&results), [("alice", 0)]);
        assert_eq!(
            store.describe(None),
            vec![(
                "alice".to_string(),
                Ok(vec![(ScramMechanism::Sha256, 4096)])
            )]
        );
        let found = store.lookup("alice", ScramMechanism::Sha256).unwrap();
        assert_eq!(
            found,
            credential_from_salted_password(ScramMechanism::Sha256, b"salt", &[7; 32], 4096)
        );
        assert_eq!(store.lookup("alice", ScramMechanism::Sha512), None);
    }

    #[tokio::test]
    async fn a_credential_stored_from_a_salted_password_authenticates_that_password() {
        let (_dir, store) = store().await;
        let salt = new_salt(ScramMechanism::Sha512);
        let salted = ScramMechanism::Sha512.salted_password(b"pw", &salt, 4096);
        let upsertion = Upsertion {
            user: "bob".into(),
            mechanism: 2,
            iterations: 4096,
            salt: salt.clone(),
            salted_password: salted.clone(),
        };
        store.alter(&[], &[upsertion]).await.unwrap();
        let stored = store.lookup("bob", ScramMechanism::Sha512).unwrap();
        assert_eq!(stored.salt, salt);
        assert_eq!(
            stored,
            credential_from_salted_password(ScramMechanism::Sha512, &salt, &salted, 4096)
        );
    }

    #[tokio::test]
    async fn refusals_carry_kafkas_codes_and_messages() {
        let (_dir, store) = store().await;
        let results = store
            .alter(
                &[delete("ghost", 1), delete("", 1), delete("m", 0)],
                &[
                    upsert("few", 1, 4095),
                    upsert("many", 2, 16385),
                    upsert("", 1, 4096),
                    upsert("unknown", 3, 4096),
                ],
            )
            .await
            .unwrap();
        let messages: Vec<(&str, i16, &str)> = results
            .iter()
            .map(|(u, r)| {
                let (e, m) = r.as_ref().unwrap_err();
                (u.as_str(), e.code(), m.as_str())
            })
            .collect();
        assert_eq!(
            messages,
            [
                (
                    "ghost",
                    91,
                    "Attempt to delete a user credential that does not exist"
                ),
                ("", 93, "Username must not be empty"),
                ("m", 33, "Unknown SCRAM mechanism"),
                ("few", 93, "Too few iterations"),
                ("many", 93, "Too many iterations"),
                ("unknown", 33, "Unknown SCRAM mechanism"),
            ]
        );
        assert!(store.describe(None).is_empty());
    }

    #[tokio::test]
    async fn a_user_named_twice_is_a_duplicate_and_nothing_of_it_changes() {
        let (_dir, store) = store().await;
        store
            .alter(&[], &[upsert("both", 1, 4096), upsert("kept", 1, 4096)])
            .await
            .unwrap();
        let results = store
            .alter(
                &[delete("both", 1), delete("twice", 1), delete("twice", 1)],
                &[
                    upsert("both", 2, 4096),
                    upsert("again", 1, 4096),
                    upsert("again", 2, 4096),
                    upsert("new", 2, 8192),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            codes(&results),
            [("new", 0), ("twice", 91), ("both", 92), ("again", 92)]
        );
        let described = store.describe(None);
        let users: Vec<&str> = described.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(users, ["both", "kept", "new"]);
    }

    #[tokio::test]
    async fn a_deletion_then_repeated_deletion_of_an_existing_user_is_a_duplicate() {
        let (_dir, store) = store().await;
        store.alter(&[], &[upsert("alice", 1, 4096)]).await.unwrap();
        let results = store
            .alter(&[delete("alice", 1), delete("alice", 1)], &[])
            .await
            .unwrap();
        assert_eq!(codes(&results), [("alice", 92)]);
        assert_eq!(store.describe(None).len(), 1);
        let results = store.alter(&[delete("alice", 1)], &[]).await.unwrap();
        assert_eq!(codes(&results), [("alice", 0)]);
        assert!(store.describe(None).is_empty());
    }

    #[tokio::test]
    async fn an_empty_salt_or_salted_password_is_unacceptable() {
        let (_dir, store) = store().await;
        let mut no_salt = upsert("a", 1, 4096);
        no_salt.salt.clear();
        let mut no_password = upsert("b", 1, 4096);
        no_password.salted_password.clear();
        let results = store.alter(&[], &[no_salt, no_password]).await.unwrap();
        assert_eq!(codes(&results), [("a", 93), ("b", 93)]);
    }

    #[tokio::test]
    async fn describing_named_users_reports_missing_and_duplicate_ones() {
        let (_dir, store) = store().await;
        store.alter(&[], &[upsert("alice", 1, 4096)]).await.unwrap();
        store.alter(&[], &[upsert("alice", 2, 8192)]).await.unwrap();
        let named: Vec<String> = ["alice", "nobody", "dup", "dup"]
            .into_iter()
            .map(String::from)
            .collect();
        let described = store.describe(Some(&named));
        assert_eq!(
            described,
            vec![
                (
                    "alice".to_string(),
                    Ok(vec![(ScramMechanism::Sha256, 4096), (ScramMechanism::Sha512, 8192)])
                ),
                (
                    "nobody".to_string(),
                    Err((
                        ResponseError::ResourceNotFound,
                        "Attempt to describe a user credential that does not exist: nobody".into()
                    ))
                ),
                (
                    "dup".to_string(),
                    Err((
                        ResponseError::DuplicateResource,
                        "Cannot describe SCRAM credentials for the same user twice in a single request: dup".into()
                    ))
                ),
            ]
        );
        assert_eq!(store.describe(Some(&[])).len(), 1);
    }

    #[tokio::test]
    async fn changes_are_stored_and_a_write_that_fails_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let store = Arc::new(MetadataStore::open(&path).unwrap());
        let credentials = ScramCredentials::open(store.clone().into()).await.unwrap();
        credentials
            .alter(&[], &[upsert("alice", 1, 4096), upsert("bob", 2, 4096)])
            .await
            .unwrap();
        credentials.alter(&[delete("bob", 2)], &[]).await.unwrap();

        store
            .failpoint()
            .fail_writes(u64::MAX, std::io::ErrorKind::StorageFull);
        assert!(credentials
            .alter(&[delete("alice", 1)], &[upsert("carol", 1, 4096)])
            .await
            .is_err());
        assert!(credentials
            .lookup("alice", ScramMechanism::Sha256)
            .is_some());
        assert!(credentials
            .lookup("carol", ScramMechanism::Sha256)
            .is_none());
        store.failpoint().clear();
        drop(credentials);
        drop(store);

        let reopened = ScramCredentials::open(Arc::new(MetadataStore::open(&path).unwrap()).into())
            .await
            .unwrap();
        let users: Vec<String> = reopened
            .describe(None)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        assert_eq!(users, ["alice"]);
        assert_eq!(
            reopened.lookup("alice", ScramMechanism::Sha256),
            Some(credential_from_salted_password(
                ScramMechanism::Sha256,
                b"salt",
                &[7; 32],
                4096
            ))
        );
    }
}
