//! ApiVersions: the APIs and version ranges this broker serves (see `starling_protocol::versions`).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;
use starling_protocol::versions;

use super::RequestContext;

fn api_keys() -> Vec<ApiVersion> {
    versions::all()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

pub fn handle(ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    tracing::debug!(
        client = ?ctx.client_id,
        software = %request.client_software_name.as_str(),
        software_version = %request.client_software_version.as_str(),
        "api versions"
    );
    let mut response = ApiVersionsResponse::default();
    response.api_keys = api_keys();
    response.finalized_features_epoch = -1;
    response
}

/// The v0 response sent to an ApiVersions request newer than we know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = ResponseError::UnsupportedVersion.code();
    response.api_keys = api_keys();
    response
}
