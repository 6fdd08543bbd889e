//! DescribeUserScramCredentials: each user's SCRAM mechanisms and iterations (never salts or
//! keys), as Kafka's `ScramImage.describe` (see [`crate::sasl::credentials::ScramCredentials::describe`]):
//! every user with a credential when the request names none, RESOURCE_NOT_FOUND for a named
//! user without one, DUPLICATE_RESOURCE for a user named twice. The credentials are the
//! broker's in-memory copy of the stored ones, so describing reads no store.

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // Kafka's rule: DESCRIBE on the cluster.
    if !ctx.authorize_cluster(broker, starling_acl::AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
    }
    let users: Option<Vec<String>> = request
        .users
        .map(|users| users.into_iter().map(|u| u.name.to_string()).collect());
    let described = broker.scram.describe(users.as_deref());
    let results = described
        .into_iter()
        .map(|(user, result)| {
            let entry = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user));
            match result {
                Ok(infos) => entry.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(mechanism, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.type_id())
                                .with_iterations(iterations)
                        })
                        .collect(),
                ),
                Err((error, message)) => entry
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
