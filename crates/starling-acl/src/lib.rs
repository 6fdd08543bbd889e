//! Kafka's access control lists, as pure logic: what an ACL is (a resource pattern and an
//! access control entry), how filters select ACLs for DescribeAcls and DeleteAcls, how a new
//! binding is validated, and the authorizer that answers "may this principal do this".
//!
//! It lives in its own crate because the broker (the ACL APIs, and later every API's checks),
//! the client and the CLI all speak this model, and none of it needs I/O: persistence is the
//! broker's business, the wire format the protocol crate's.
//!
//! - [`model`]: the enums with Kafka's wire codes and names, bindings and filters.
//! - [`authorizer`]: [`Authorizer`], indexed for many concurrent readers.

pub mod authorizer;
pub mod model;

pub use authorizer::{Authorizer, AuthorizerSettings};
pub use model::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation,
    PatternType, Permission, ResourcePattern, ResourcePatternFilter, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};
