//! Kafka's published request schemas, loaded into the compact form the length check walks.
//!
//! The JSON files under `schemas/` are Apache Kafka's message definitions
//! (`clients/src/main/resources/common/message`), facts about the wire format. Each field says
//! in which versions it exists, in which it may be null, in which it is a tagged field, and its
//! type: a fixed-size number, a string, bytes, an array of some type, or a struct of further
//! fields. They are embedded at compile time and parsed once.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// A version range as the schemas write it: `"3+"`, `"0-5"`, `"7"` or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    lo: i16,
    hi: i16,
}

impl Versions {
    /// The empty range.
    pub const NONE: Versions = Versions { lo: 1, hi: 0 };

    pub fn parse(text: &str) -> Result<Versions, String> {
        let text = text.trim();
        let number = |s: &str| {
            s.trim()
                .parse::<i16>()
                .map_err(|_| format!("bad version range {text:?}"))
        };
        if text == "none" {
            Ok(Versions::NONE)
        } else if let Some(lo) = text.strip_suffix('+') {
            Ok(Versions {
                lo: number(lo)?,
                hi: i16::MAX,
            })
        } else if let Some((lo, hi)) = text.split_once('-') {
            Ok(Versions {
                lo: number(lo)?,
                hi: number(hi)?,
            })
        } else {
            let v = number(text)?;
            Ok(Versions { lo: v, hi: v })
        }
    }

    pub fn contains(self, version: i16) -> bool {
        self.lo <= version && version <= self.hi
    }

    /// Lowest and highest version, `None` for the empty range.
    pub fn bounds(self) -> Option<(i16, i16)> {
        (self.lo <= self.hi).then_some((self.lo, self.hi))
    }
}

/// What a field holds on the wire.
#[derive(Debug)]
pub enum Kind {
    /// A fixed number of bytes: bool/int8 (1), int16/uint16 (2), int32/uint32 (4),
    /// int64/float64 (8), uuid (16).
    Fixed(usize),
    /// A string: `int16` length (compact: unsigned varint length + 1), `-1`/`0` for null.
    String,
    /// Bytes or a record set: `int32` length (compact: unsigned varint length + 1).
    Bytes,
    /// An array: `int32` count (compact: unsigned varint count + 1), then the elements.
    Array(Box<Kind>),
    /// A struct: its fields in order, then (in flexible versions) its tagged fields.
    Struct(Vec<Field>),
}

/// One field of a message or struct.
#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub versions: Versions,
    pub nullable: Versions,
    /// Versions in which this is a tagged field, and its tag.
    pub tagged: Option<(Versions, u32)>,
    /// A field-level override of the message's flexible versions (the request header's client
    /// id is never compact).
    pub flexible: Option<Versions>,
}

impl Field {
    /// Whether the field is written in the tagged-field section at `version`.
    pub fn is_tagged_at(&self, version: i16) -> bool {
        self.tagged.is_some_and(|(v, _)| v.contains(version))
    }

    /// Whether the field's lengths use the compact (varint) form at `version`.
    pub fn is_compact(&self, version: i16, message_flexible: bool) -> bool {
        match self.flexible {
            Some(v) => v.contains(version),
            None => message_flexible,
        }
    }
}

/// One request (or the request header).
#[derive(Debug)]
pub struct Message {
    pub name: String,
    pub api_key: Option<i16>,
    pub valid: Versions,
    pub flexible: Versions,
    pub fields: Vec<Field>,
}

/// Every schema Starling checks requests against.
#[derive(Debug)]
pub struct Schemas {
    pub header: Message,
    pub requests: HashMap<i16, Message>,
}

/// The embedded files: the request header and every request Starling serves.
const FILES: &[(&str, &str)] = &[
    (
        "RequestHeader",
        include_str!("../../schemas/RequestHeader.json"),
    ),
    (
        "ProduceRequest",
        include_str!("../../schemas/ProduceRequest.json"),
    ),
    (
        "FetchRequest",
        include_str!("../../schemas/FetchRequest.json"),
    ),
    (
        "ListOffsetsRequest",
        include_str!("../../schemas/ListOffsetsRequest.json"),
    ),
    (
        "MetadataRequest",
        include_str!("../../schemas/MetadataRequest.json"),
    ),
    (
        "OffsetCommitRequest",
        include_str!("../../schemas/OffsetCommitRequest.json"),
    ),
    (
        "OffsetFetchRequest",
        include_str!("../../schemas/OffsetFetchRequest.json"),
    ),
    (
        "FindCoordinatorRequest",
        include_str!("../../schemas/FindCoordinatorRequest.json"),
    ),
    (
        "JoinGroupRequest",
        include_str!("../../schemas/JoinGroupRequest.json"),
    ),
    (
        "HeartbeatRequest",
        include_str!("../../schemas/HeartbeatRequest.json"),
    ),
    (
        "LeaveGroupRequest",
        include_str!("../../schemas/LeaveGroupRequest.json"),
    ),
    (
        "SyncGroupRequest",
        include_str!("../../schemas/SyncGroupRequest.json"),
    ),
    (
        "DescribeGroupsRequest",
        include_str!("../../schemas/DescribeGroupsRequest.json"),
    ),
    (
        "ListGroupsRequest",
        include_str!("../../schemas/ListGroupsRequest.json"),
    ),
    (
        "ApiVersionsRequest",
        include_str!("../../schemas/ApiVersionsRequest.json"),
    ),
    (
        "CreateTopicsRequest",
        include_str!("../../schemas/CreateTopicsRequest.json"),
    ),
    (
        "DeleteTopicsRequest",
        include_str!("../../schemas/DeleteTopicsRequest.json"),
    ),
    (
        "DeleteGroupsRequest",
        include_str!("../../schemas/DeleteGroupsRequest.json"),
    ),
    (
        "CreatePartitionsRequest",
        include_str!("../../schemas/CreatePartitionsRequest.json"),
    ),
    (
        "OffsetDeleteRequest",
        include_str!("../../schemas/OffsetDeleteRequest.json"),
    ),
    (
        "ConsumerGroupHeartbeatRequest",
        include_str!("../../schemas/ConsumerGroupHeartbeatRequest.json"),
    ),
    (
        "ConsumerGroupDescribeRequest",
        include_str!("../../schemas/ConsumerGroupDescribeRequest.json"),
    ),
    (
        "InitProducerIdRequest",
        include_str!("../../schemas/InitProducerIdRequest.json"),
    ),
    (
        "DeleteRecordsRequest",
        include_str!("../../schemas/DeleteRecordsRequest.json"),
    ),
    (
        "AddPartitionsToTxnRequest",
        include_str!("../../schemas/AddPartitionsToTxnRequest.json"),
    ),
    (
        "AddOffsetsToTxnRequest",
        include_str!("../../schemas/AddOffsetsToTxnRequest.json"),
    ),
    (
        "EndTxnRequest",
        include_str!("../../schemas/EndTxnRequest.json"),
    ),
    (
        "TxnOffsetCommitRequest",
        include_str!("../../schemas/TxnOffsetCommitRequest.json"),
    ),
    (
        "DescribeProducersRequest",
        include_str!("../../schemas/DescribeProducersRequest.json"),
    ),
    (
        "DescribeTransactionsRequest",
        include_str!("../../schemas/DescribeTransactionsRequest.json"),
    ),
    (
        "ListTransactionsRequest",
        include_str!("../../schemas/ListTransactionsRequest.json"),
    ),
    (
        "DescribeClusterRequest",
        include_str!("../../schemas/DescribeClusterRequest.json"),
    ),
    (
        "OffsetForLeaderEpochRequest",
        include_str!("../../schemas/OffsetForLeaderEpochRequest.json"),
    ),
    (
        "DescribeLogDirsRequest",
        include_str!("../../schemas/DescribeLogDirsRequest.json"),
    ),
    (
        "DescribeTopicPartitionsRequest",
        include_str!("../../schemas/DescribeTopicPartitionsRequest.json"),
    ),
    (
        "DescribeConfigsRequest",
        include_str!("../../schemas/DescribeConfigsRequest.json"),
    ),
    (
        "AlterConfigsRequest",
        include_str!("../../schemas/AlterConfigsRequest.json"),
    ),
    (
        "IncrementalAlterConfigsRequest",
        include_str!("../../schemas/IncrementalAlterConfigsRequest.json"),
    ),
    (
        "ElectLeadersRequest",
        include_str!("../../schemas/ElectLeadersRequest.json"),
    ),
    (
        "ListPartitionReassignmentsRequest",
        include_str!("../../schemas/ListPartitionReassignmentsRequest.json"),
    ),
    (
        "AlterPartitionReassignmentsRequest",
        include_str!("../../schemas/AlterPartitionReassignmentsRequest.json"),
    ),
    (
        "DescribeClientQuotasRequest",
        include_str!("../../schemas/DescribeClientQuotasRequest.json"),
    ),
    (
        "AlterClientQuotasRequest",
        include_str!("../../schemas/AlterClientQuotasRequest.json"),
    ),
    (
        "DescribeAclsRequest",
        include_str!("../../schemas/DescribeAclsRequest.json"),
    ),
    (
        "CreateAclsRequest",
        include_str!("../../schemas/CreateAclsRequest.json"),
    ),
    (
        "DeleteAclsRequest",
        include_str!("../../schemas/DeleteAclsRequest.json"),
    ),
    (
        "DescribeUserScramCredentialsRequest",
        include_str!("../../schemas/DescribeUserScramCredentialsRequest.json"),
    ),
    (
        "AlterUserScramCredentialsRequest",
        include_str!("../../schemas/AlterUserScramCredentialsRequest.json"),
    ),
    (
        "SaslHandshakeRequest",
        include_str!("../../schemas/SaslHandshakeRequest.json"),
    ),
    (
        "SaslAuthenticateRequest",
        include_str!("../../schemas/SaslAuthenticateRequest.json"),
    ),
];

/// The schemas, parsed on first use. The files are part of the binary and every one of them
/// is loaded by this crate's tests, so a failure here is a build defect, not bad input.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| load().unwrap_or_else(|e| panic!("embedded Kafka schemas: {e}")))
}

fn load() -> Result<Schemas, String> {
    let mut header = None;
    let mut requests = HashMap::new();
    for (name, text) in FILES {
        let message = parse_message(text).map_err(|e| format!("{name}: {e}"))?;
        match message.api_key {
            Some(key) => {
                requests.insert(key, message);
            }
            None => header = Some(message),
        }
    }
    Ok(Schemas {
        header: header.ok_or("no RequestHeader schema")?,
        requests,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    name: String,
    api_key: Option<i16>,
    valid_versions: String,
    flexible_versions: String,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    common_structs: Vec<RawStruct>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStruct {
    name: String,
    fields: Vec<RawField>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    versions: String,
    nullable_versions: Option<String>,
    tagged_versions: Option<String>,
    tag: Option<u32>,
    flexible_versions: Option<String>,
    #[serde(default)]
    fields: Vec<RawField>,
}

/// Parses one schema file (JSON with `//` comments).
pub fn parse_message(text: &str) -> Result<Message, String> {
    let raw: RawMessage =
        serde_json::from_str(&strip_comments(text)).map_err(|e| format!("json: {e}"))?;
    let common: HashMap<&str, &[RawField]> = raw
        .common_structs
        .iter()
        .map(|s| (s.name.as_str(), s.fields.as_slice()))
        .collect();
    let fields = compile_fields(&raw.fields, &common)?;
    Ok(Message {
        name: raw.name,
        api_key: raw.api_key,
        valid: Versions::parse(&raw.valid_versions)?,
        flexible: Versions::parse(&raw.flexible_versions)?,
        fields,
    })
}

fn compile_fields(
    raw: &[RawField],
    common: &HashMap<&str, &[RawField]>,
) -> Result<Vec<Field>, String> {
    raw.iter().map(|f| compile_field(f, common)).collect()
}

fn compile_field(raw: &RawField, common: &HashMap<&str, &[RawField]>) -> Result<Field, String> {
    let kind =
        compile_kind(&raw.ty, &raw.fields, common).map_err(|e| format!("{}: {e}", raw.name))?;
    let tagged = match (&raw.tagged_versions, raw.tag) {
        (Some(v), Some(tag)) => Some((Versions::parse(v)?, tag)),
        (None, None) => None,
        _ => return Err(format!("{}: taggedVersions and tag go together", raw.name)),
    };
    Ok(Field {
        name: raw.name.clone(),
        kind,
        versions: Versions::parse(&raw.versions)?,
        nullable: match &raw.nullable_versions {
            Some(v) => Versions::parse(v)?,
            None => Versions::NONE,
        },
        tagged,
        flexible: raw
            .flexible_versions
            .as_deref()
            .map(Versions::parse)
            .transpose()?,
    })
}

fn compile_kind(
    ty: &str,
    inline: &[RawField],
    common: &HashMap<&str, &[RawField]>,
) -> Result<Kind, String> {
    Ok(match ty {
        "bool" | "int8" => Kind::Fixed(1),
        "int16" | "uint16" => Kind::Fixed(2),
        "int32" | "uint32" => Kind::Fixed(4),
        "int64" | "float64" => Kind::Fixed(8),
        "uuid" => Kind::Fixed(16),
        "string" => Kind::String,
        "bytes" | "records" => Kind::Bytes,
        _ => {
            if let Some(element) = ty.strip_prefix("[]") {
                Kind::Array(Box::new(compile_kind(element, inline, common)?))
            } else if !inline.is_empty() {
                Kind::Struct(compile_fields(inline, common)?)
            } else if let Some(fields) = common.get(ty) {
                Kind::Struct(compile_fields(fields, common)?)
            } else {
                return Err(format!("unknown type {ty:?}"));
            }
        }
    })
}

/// Removes `//` comments (outside string literals), which Kafka's schema files use freely.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            for skipped in chars.by_ref() {
                if skipped == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges_parse_as_the_schemas_write_them() {
        let open = Versions::parse("3+").unwrap();
        assert!(!open.contains(2) && open.contains(3) && open.contains(i16::MAX));
        let closed = Versions::parse("0-12").unwrap();
        assert!(closed.contains(0) && closed.contains(12) && !closed.contains(13));
        let single = Versions::parse("7").unwrap();
        assert!(single.contains(7) && !single.contains(6) && !single.contains(8));
        assert!(!Versions::parse("none").unwrap().contains(0));
        assert!(Versions::parse("x+").is_err());
    }

    #[test]
    fn comments_are_stripped_but_slashes_inside_strings_are_kept() {
        let text = "// header\n{ \"a\": \"http://x\", // trailing\n \"b\": 1 }";
        let v: serde_json::Value = serde_json::from_str(&strip_comments(text)).unwrap();
        assert_eq!(v["a"], "http://x");
        assert_eq!(v["b"], 1);
    }

    #[test]
    fn every_embedded_schema_loads() {
        let s = schemas();
        assert_eq!(s.header.name, "RequestHeader");
        assert_eq!(s.requests.len(), FILES.len() - 1);
    }

    #[test]
    fn a_struct_named_in_common_structs_is_resolved() {
        let text = r#"{ "apiKey": 99, "type": "request", "name": "X", "validVersions": "0",
            "flexibleVersions": "none",
            "fields": [ { "name": "A", "type": "[]Shared", "versions": "0+" } ],
            "commonStructs": [ { "name": "Shared", "versions": "0+",
                "fields": [ { "name": "B", "type": "int32", "versions": "0+" } ] } ] }"#;
        let m = parse_message(text).unwrap();
        match &m.fields[0].kind {
            Kind::Array(element) => {
                assert!(matches!(**element, Kind::Struct(ref f) if f.len() == 1))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_type_is_refused() {
        let text = r#"{ "apiKey": 99, "type": "request", "name": "X", "validVersions": "0",
            "flexibleVersions": "none",
            "fields": [ { "name": "A", "type": "Nowhere", "versions": "0+" } ] }"#;
        assert!(parse_message(text).unwrap_err().contains("Nowhere"));
    }
}
