//! AlterUserScramCredentials: sets and removes users' SCRAM credentials, as Kafka's
//! `ScramControlManager` (see [`crate::sasl::credentials::ScramCredentials::alter`]): the client sends a salt
//! and the salted password, the broker keeps only the stored and server keys derived from it.
//! One result per user named; a user named twice in one request (in deletions, upsertions or
//! both) is DUPLICATE_RESOURCE and nothing of it changes. The accepted changes are persisted
//! in one write before the response; a failed write answers every user KAFKA_STORAGE_ERROR
//! and changes nothing.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::sasl::credentials::{Deletion, Upsertion};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let deletions: Vec<Deletion> = request
        .deletions
        .into_iter()
        .map(|d| Deletion {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<Upsertion> = request
        .upsertions
        .into_iter()
        .map(|u| Upsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let result = |user: String| {
        AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user))
    };
    // Kafka's rule: ALTER on the cluster, or every user named is CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authorize_cluster(broker, starling_acl::AclOperation::Alter) {
        let mut users: Vec<String> = Vec::new();
        for user in deletions
            .iter()
            .map(|d| d.user.clone())
            .chain(upsertions.iter().map(|u| u.user.clone()))
        {
            if !users.contains(&user) {
                users.push(user);
            }
        }
        let results = users
            .into_iter()
            .map(|user| {
                result(user)
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")))
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    let results = match broker.scram.alter(&deletions, &upsertions).await {
        Ok(results) => results
            .into_iter()
            .map(|(user, outcome)| match outcome {
                // Kafka answers a success with a null message (the field's default is "").
                Ok(()) => result(user).with_error_message(None),
                Err((error, message)) => result(user)
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "storing SCRAM credentials");
            let mut users: Vec<String> = Vec::new();
            for user in deletions
                .into_iter()
                .map(|d| d.user)
                .chain(upsertions.into_iter().map(|u| u.user))
            {
                if !users.contains(&user) {
                    users.push(user);
                }
            }
            users
                .into_iter()
                .map(|user| {
                    result(user)
                        .with_error_code(ResponseError::KafkaStorageError.code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string())))
                })
                .collect()
        }
    };
    AlterUserScramCredentialsResponse::default().with_results(results)
}
