//! The console's actions on a group: resetting its offsets for a topic (a dry run first),
//! deleting it, deleting its offsets for a topic. Each is a GET that shows what would happen
//! and a POST that does it, sent to the group coordinator as the matching Kafka request
//! (OffsetCommit, DeleteGroups, OffsetDelete) would be, after the ACL checks Kafka makes for
//! that request.
//!
//! **Forgery.** The POST carries a token ([`CsrfKey`]): an HMAC, under a key made at start,
//! of the caller's principal, the action, the group and the time it was issued, valid for
//! [`TOKEN_LIFETIME_MS`]; another site cannot read a page to learn one. A request a browser
//! marks as coming from another site (`Sec-Fetch-Site`, or an `Origin` other than the
//! endpoint's own) is refused before the token is looked at.

// The `Err` of these helpers is the page to answer, built once per request: its size does not
// matter.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, GroupId, OffsetCommitRequest, OffsetDeleteRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use sha2::Sha256;
use starling_acl::{AclOperation, ResourceType};
use starling_console::actions::{self, Deletion, ResetPlan, ResetRow, ResetTarget};
use starling_group::{GroupOverview, GroupRequest, GroupResponse};
use subtle::ConstantTimeEq;

use super::{console_client, describable_group, forbidden, html_page, message_page};
use crate::admin::auth::Caller;
use crate::admin::{AdminState, Peer};
use crate::metrics::error_name;

/// How long a form's token stays good.
pub const TOKEN_LIFETIME_MS: i64 = 30 * 60 * 1000;

/// The key the console's form tokens are made with, random per broker process.
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn random() -> CsrfKey {
        let bytes = crate::sasl::random_bytes(32);
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        CsrfKey(key)
    }

    fn mac(&self, principal: &str, action: &str, group: &str, issued_ms: i64) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        for part in [principal, action, group, &issued_ms.to_string()] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// A token for `principal` to do `action` on `group`, issued at `now_ms`.
    pub fn token(&self, principal: &str, action: &str, group: &str, now_ms: i64) -> String {
        let mac = self.mac(principal, action, group, now_ms);
        format!("{now_ms}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Whether `token` lets `principal` do `action` on `group` at `now_ms`.
    pub fn verify(
        &self,
        token: &str,
        principal: &str,
        action: &str,
        group: &str,
        now_ms: i64,
    ) -> Result<(), &'static str> {
        let (issued, mac) = token.split_once('.').ok_or("a malformed form token")?;
        let issued: i64 = issued.parse().map_err(|_| "a malformed form token")?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| "a malformed form token")?;
        let expected = self.mac(principal, action, group, issued);
        if !bool::from(mac.ct_eq(&expected)) {
            return Err("a form token that was not made for this action, group and user");
        }
        if now_ms.saturating_sub(issued) > TOKEN_LIFETIME_MS || issued > now_ms + 60_000 {
            return Err("an expired form token: open the page again");
        }
        Ok(())
    }
}

/// Whether the browser says the request comes from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (value(header::ORIGIN.as_str()), value(header::HOST.as_str())) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split("://").nth(1).unwrap_or(origin);
            origin_host != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// The reset form's fields (query of the dry run, body of the POST).
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    topic: String,
    to: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    partitions: String,
    #[serde(default)]
    token: String,
}

/// A deletion's POST body.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    topic: String,
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct TopicQuery {
    topic: String,
}

fn bad_request(message: &str) -> Response {
    message_page(StatusCode::BAD_REQUEST, "Cannot do that", message)
}

/// Refuses a forged or cross-site POST.
fn check_post(
    state: &AdminState,
    headers: &HeaderMap,
    caller: &Caller,
    action: &str,
    group: &str,
    token: &str,
) -> Result<(), Response> {
    if cross_site(headers) {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request came from another site.",
        ));
    }
    state
        .console_key
        .verify(token, &caller.principal, action, group, crate::now_ms())
        .map_err(|why| {
            message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                &format!("The form carried {why}."),
            )
        })
}

/// Plans the reset `form` asks for: every chosen partition's new offset.
async fn plan_reset(
    state: &AdminState,
    caller: &Caller,
    group: &GroupOverview,
    form: &ResetForm,
) -> Result<ResetPlan, Response> {
    let target = ResetTarget::from_form(&form.to, &form.value).map_err(|e| bad_request(&e))?;
    let Some(topic) = state.broker.topics.get(&form.topic).filter(|_| {
        state.may(
            caller,
            AclOperation::Describe,
            ResourceType::Topic,
            &form.topic,
        )
    }) else {
        return Err(message_page(
            StatusCode::NOT_FOUND,
            "No such topic",
            &format!("There is no topic '{}'.", form.topic),
        ));
    };
    let mut chosen: Vec<i32> = Vec::new();
    for part in form
        .partitions
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part.parse::<i32>() {
            Ok(p) if topic.partition(p).is_some() => chosen.push(p),
            _ => {
                return Err(bad_request(&format!(
                    "Topic '{}' has no partition {part:?} (it has {}).",
                    form.topic,
                    topic.partitions.len()
                )))
            }
        }
    }
    let committed: BTreeMap<i32, i64> = group
        .offsets
        .iter()
        .filter(|(t, _, _)| *t == form.topic)
        .map(|(_, p, o)| (*p, *o))
        .collect();
    let blocked = (group.members > 0).then(|| {
        format!(
            "The group has {} member{}: offsets can only be reset while it has none (stop its \
             consumers first), as with kafka-consumer-groups --reset-offsets.",
            group.members,
            if group.members == 1 { "" } else { "s" }
        )
    });
    let mut rows = Vec::new();
    for p in topic
        .partitions
        .iter()
        .filter(|p| chosen.is_empty() || chosen.contains(&p.index))
    {
        let start = p.log.log_start_offset();
        let end = p.log.log_end_offset();
        let at_timestamp = match target {
            ResetTarget::Timestamp(ms) => p
                .log
                .offset_for_timestamp(ms)
                .await
                .ok()
                .flatten()
                .map(|(offset, _)| offset),
            _ => None,
        };
        let current = committed.get(&p.index).copied();
        rows.push(ResetRow {
            partition: p.index,
            current,
            new_offset: target.new_offset(start, end, current, at_timestamp),
            log_start_offset: start,
            log_end_offset: end,
        });
    }
    Ok(ResetPlan {
        group_id: group.group_id.clone(),
        topic: form.topic.clone(),
        target,
        partitions: form.partitions.clone(),
        rows,
        blocked,
        csrf_token: state.console_key.token(
            &caller.principal,
            "reset",
            &group.group_id,
            crate::now_ms(),
        ),
    })
}

pub async fn reset_preview(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(form): Query<ResetForm>,
) -> Response {
    let (caller, group) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    match plan_reset(&state, &caller, &group, &form).await {
        Ok(plan) => html_page(StatusCode::OK, actions::render_reset_preview(&plan)),
        Err(page) => page,
    }
}

fn outcome(code: i16) -> Result<(), String> {
    if code == 0 {
        Ok(())
    } else {
        Err(error_name(code))
    }
}

pub async fn reset_commit(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ResetForm>,
) -> Response {
    let (caller, group) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if let Err(page) = check_post(&state, &headers, &caller, "reset", &id, &form.token) {
        return page;
    }
    // OffsetCommit's checks: READ on the group and on the topic.
    if !state.may(&caller, AclOperation::Read, ResourceType::Group, &id) {
        return forbidden(&caller, &format!("READ group '{id}'"));
    }
    if !state.may(
        &caller,
        AclOperation::Read,
        ResourceType::Topic,
        &form.topic,
    ) {
        return forbidden(&caller, &format!("READ topic '{}'", form.topic));
    }
    let plan = match plan_reset(&state, &caller, &group, &form).await {
        Ok(plan) => plan,
        Err(page) => return page,
    };
    if let Some(why) = &plan.blocked {
        return message_page(StatusCode::CONFLICT, "Not reset", why);
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(id.clone())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(plan.topic.clone())))
            .with_partitions(
                plan.rows
                    .iter()
                    .map(|r| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(r.partition)
                            .with_committed_offset(r.new_offset)
                    })
                    .collect(),
            )]);
    let answer = state
        .broker
        .groups
        .call(
            8,
            console_client(&caller),
            GroupRequest::OffsetCommit(request),
        )
        .await;
    let results: Vec<(String, Result<(), String>)> = match answer {
        Ok(GroupResponse::OffsetCommit(response)) => response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        format!("{}-{}", t.name.as_str(), p.partition_index),
                        outcome(p.error_code),
                    )
                })
            })
            .collect(),
        Ok(_) => vec![("the commit".into(), Err("an unexpected answer".into()))],
        Err(e) => vec![("the commit".into(), Err(e.to_string()))],
    };
    tracing::info!(
        group = %id,
        topic = %plan.topic,
        principal = %caller.principal,
        to = %plan.target.describe(),
        "console: offsets reset"
    );
    html_page(
        StatusCode::OK,
        actions::render_outcome(&id, &format!("Reset offsets of {id}"), &results, true),
    )
}

pub async fn delete_confirm(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (caller, _) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let token = state
        .console_key
        .token(&caller.principal, "delete", &id, crate::now_ms());
    html_page(
        StatusCode::OK,
        actions::render_confirm(&id, &Deletion::Group, &token),
    )
}

pub async fn delete_group(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let (caller, _) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if let Err(page) = check_post(&state, &headers, &caller, "delete", &id, &form.token) {
        return page;
    }
    if !state.may(&caller, AclOperation::Delete, ResourceType::Group, &id) {
        return forbidden(&caller, &format!("DELETE group '{id}'"));
    }
    let request = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(StrBytes::from_string(id.clone()))]);
    let result = match state
        .broker
        .groups
        .call(
            2,
            console_client(&caller),
            GroupRequest::DeleteGroups(request),
        )
        .await
    {
        Ok(GroupResponse::DeleteGroups(response)) => response
            .results
            .first()
            .map_or(Err("no answer for the group".to_string()), |r| {
                outcome(r.error_code)
            }),
        Ok(_) => Err("an unexpected answer".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let deleted = result.is_ok();
    if deleted {
        tracing::info!(group = %id, principal = %caller.principal, "console: group deleted");
    }
    html_page(
        StatusCode::OK,
        actions::render_outcome(
            &id,
            &format!("Delete group {id}"),
            &[(format!("group {id}"), result)],
            !deleted,
        ),
    )
}

pub async fn delete_offsets_confirm(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<TopicQuery>,
) -> Response {
    let (caller, _) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let token = state
        .console_key
        .token(&caller.principal, "delete-offsets", &id, crate::now_ms());
    html_page(
        StatusCode::OK,
        actions::render_confirm(&id, &Deletion::Offsets { topic: query.topic }, &token),
    )
}

pub async fn delete_offsets(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let (caller, group) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if let Err(page) = check_post(
        &state,
        &headers,
        &caller,
        "delete-offsets",
        &id,
        &form.token,
    ) {
        return page;
    }
    // OffsetDelete's checks: DELETE on the group, READ on the topic.
    if !state.may(&caller, AclOperation::Delete, ResourceType::Group, &id) {
        return forbidden(&caller, &format!("DELETE group '{id}'"));
    }
    if !state.may(
        &caller,
        AclOperation::Read,
        ResourceType::Topic,
        &form.topic,
    ) {
        return forbidden(&caller, &format!("READ topic '{}'", form.topic));
    }
    let partitions: Vec<i32> = group
        .offsets
        .iter()
        .filter(|(t, _, _)| *t == form.topic)
        .map(|(_, p, _)| *p)
        .collect();
    if partitions.is_empty() {
        return bad_request(&format!(
            "Group '{id}' has no committed offsets for topic '{}'.",
            form.topic
        ));
    }
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(id.clone())))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(form.topic.clone())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    let results: Vec<(String, Result<(), String>)> = match state
        .broker
        .groups
        .call(
            0,
            console_client(&caller),
            GroupRequest::OffsetDelete(request),
        )
        .await
    {
        Ok(GroupResponse::OffsetDelete(response)) if response.error_code != 0 => {
            vec![(format!("group {id}"), outcome(response.error_code))]
        }
        Ok(GroupResponse::OffsetDelete(response)) => response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        format!("{}-{}", t.name.as_str(), p.partition_index),
                        outcome(p.error_code),
                    )
                })
            })
            .collect(),
        Ok(_) => vec![("the deletion".into(), Err("an unexpected answer".into()))],
        Err(e) => vec![("the deletion".into(), Err(e.to_string()))],
    };
    html_page(
        StatusCode::OK,
        actions::render_outcome(
            &id,
            &format!("Delete offsets of {id} for {}", form.topic),
            &results,
            true,
        ),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_token_is_good_only_for_its_principal_action_group_and_lifetime() {
        let key = CsrfKey::random();
        let now = 1_800_000_000_000;
        let token = key.token("User:ops", "reset", "g", now);
        assert_eq!(
            key.verify(&token, "User:ops", "reset", "g", now + 1000),
            Ok(())
        );
        for (principal, action, group) in [
            ("User:eve", "reset", "g"),
            ("User:ops", "delete", "g"),
            ("User:ops", "reset", "h"),
        ] {
            assert!(key.verify(&token, principal, action, group, now).is_err());
        }
        assert!(key
            .verify(
                &token,
                "User:ops",
                "reset",
                "g",
                now + TOKEN_LIFETIME_MS + 1
            )
            .unwrap_err()
            .contains("expired"));
        assert!(CsrfKey::random()
            .verify(&token, "User:ops", "reset", "g", now)
            .is_err());
        for garbage in ["", "123", "x.y", "1.!!!"] {
            assert!(key.verify(garbage, "User:ops", "reset", "g", now).is_err());
        }
    }

    #[test]
    fn requests_a_browser_marks_as_cross_site_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:9644"),
            ("host", "127.0.0.1:9644")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:9644")
        ])));
    }
}
