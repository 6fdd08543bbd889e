//! The web console's routes on the admin endpoint: `/ui/` (the overview), `/ui/groups/{id}`
//! (one group), `/ui/topics/{name}` (one topic and its message browser), the group actions ([`actions`]) and the embedded stylesheet and script. The data is gathered here — topics
//! from the registry (on a blocking thread: reading log sizes takes the logs' locks), groups,
//! members and rebalance records from the group coordinator, asked as a client would ask —
//! and filtered by the caller's ACLs exactly as `/groups` and `/groups/{id}/rebalances` are;
//! `starling-console` renders it. Nothing here is on a Kafka request's path.

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::StrBytes;
use starling_acl::{AclOperation, ResourceType};
use starling_console::group::{GroupView, MemberRow, PartitionQuery, PartitionRow};
use starling_console::html::{self as console_html, Section};
use starling_console::overview::{BrokerFacts, GroupRow, LastRebalance, ListQuery, TopicRow};
use starling_console::topic::{
    BrowseQuery, BrowsedMessage, ConfigRow, TopicGroupRow, TopicPartitionRow, TopicView,
};
use starling_group::{ClientInfo, GroupOverview, GroupRequest, GroupResponse};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{hide_topics, lag, storage_faults, AdminState, Peer, OVERVIEW_TIMEOUT};

pub mod actions;
use super::activity::Activity;
use crate::admin::auth::Caller;
use crate::topics::Topic;

/// The client id the console's coordinator requests carry.
const CONSOLE_CLIENT_ID: &str = "starling-console";

/// Who the console's coordinator requests come from: the console, at the caller's address.
fn console_client(caller: &Caller) -> ClientInfo {
    ClientInfo {
        client_id: CONSOLE_CLIENT_ID.to_string(),
        client_host: caller.ip.to_string(),
    }
}

/// The console's routes, merged into the admin router.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview))
        .route("/ui/console.css", get(stylesheet))
        .route("/ui/console.js", get(script))
        .route("/ui/groups/{id}", get(group_page))
        .route("/ui/topics/{name}", get(topic_page))
        .route(
            "/ui/groups/{id}/reset",
            get(actions::reset_preview).post(actions::reset_commit),
        )
        .route(
            "/ui/groups/{id}/delete",
            get(actions::delete_confirm).post(actions::delete_group),
        )
        .route(
            "/ui/groups/{id}/delete-offsets",
            get(actions::delete_offsets_confirm).post(actions::delete_offsets),
        )
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        console_html::STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        console_html::SCRIPT,
    )
        .into_response()
}

/// An HTML page, never cached (it shows live state).
fn html_page(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// A page that only says what went wrong.
fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut body = console_html::Html::new();
    body.raw("<p>").text(message).raw("</p><p>");
    body.link("/ui/", "Back to the overview").raw("</p>");
    html_page(
        status,
        console_html::page(title, Section::Overview, &body.into_string(), None),
    )
}

fn forbidden(caller: &Caller, what: &str) -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        &format!("{} may not {what}.", caller.principal),
    )
}

/// The caller and the group it may DESCRIBE, or the page to answer: refused before the
/// lookup, so the answer does not say whether the group exists.
#[allow(clippy::result_large_err)] // the page to answer, built once per request
async fn describable_group(
    state: &AdminState,
    headers: &HeaderMap,
    peer: Peer,
    id: &str,
) -> Result<(Caller, GroupOverview), Response> {
    let caller = state.caller(headers, peer).await?;
    if !state.may(&caller, AclOperation::Describe, ResourceType::Group, id) {
        return Err(forbidden(&caller, &format!("DESCRIBE group '{id}'")));
    }
    let groups = group_overviews(state).await?;
    match groups.into_iter().find(|g| g.group_id == id) {
        Some(group) => Ok((caller, group)),
        None => Err(message_page(
            StatusCode::NOT_FOUND,
            "No such group",
            &format!("The coordinator holds no group '{id}'."),
        )),
    }
}

/// The coordinator's groups, or the page saying it did not answer.
async fn group_overviews(state: &AdminState) -> Result<Vec<GroupOverview>, Response> {
    match tokio::time::timeout(OVERVIEW_TIMEOUT, state.broker.groups.overview()).await {
        Ok(Ok(groups)) => Ok(groups),
        Ok(Err(e)) => Err(message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &format!("The group coordinator is unavailable: {e}"),
        )),
        Err(_) => Err(message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The group coordinator did not answer in time.",
        )),
    }
}

fn kind(group: &GroupOverview) -> &'static str {
    if group.consumer_state.is_some() {
        "consumer"
    } else {
        "classic"
    }
}

fn state_name(group: &GroupOverview) -> String {
    group
        .consumer_state
        .map_or(group.state.name(), |s| s.as_str())
        .to_string()
}

async fn overview(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let caller = match state.caller(&headers, peer).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let groups = match group_overviews(&state).await {
        Ok(groups) => groups,
        Err(page) => return page,
    };
    let broker = state.broker.clone();
    let mut may_describe_topic = state.topic_filter(&caller);
    let mut describable = broker.topics.all();
    describable.retain(|t| may_describe_topic(&t.name));
    let group_rows: Vec<GroupRow> = groups
        .into_iter()
        .filter(|g| {
            state.may(
                &caller,
                AclOperation::Describe,
                ResourceType::Group,
                &g.group_id,
            )
        })
        .map(|g| group_row(g, &broker.topics, &mut may_describe_topic))
        .collect();
    let facts = broker_facts(&state, &caller);
    let query = ListQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let activity = state.activity.clone();
    // Log sizes and offsets take the logs' locks, which appends hold while they write.
    let rendered = tokio::task::spawn_blocking(move || {
        let mut facts = facts;
        let topics = topic_rows(&describable, &activity);
        facts.log_bytes = topics.iter().map(|t| t.size_bytes).sum();
        starling_console::overview::render(&starling_console::overview::Overview {
            broker: facts,
            topics,
            groups: group_rows,
            query,
        })
    })
    .await;
    match rendered {
        Ok(page) => html_page(StatusCode::OK, page),
        Err(_) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Rendering the overview failed.",
        ),
    }
}

fn broker_facts(state: &AdminState, caller: &Caller) -> BrokerFacts {
    let broker = &state.broker;
    let config = &broker.config;
    let told = state.may_describe_cluster(caller);
    BrokerFacts {
        version: env!("CARGO_PKG_VERSION").to_string(),
        cluster_id: broker.cluster_id.clone(),
        node_id: config.node_id,
        uptime_ms: crate::now_ms() - broker.started_ms,
        listeners: config
            .listeners
            .iter()
            .map(|l| {
                let (host, port) = config.advertised_for(&l.name, l.addr);
                (l.name.clone(), format!("{host}:{port}"))
            })
            .collect(),
        // Where the data lives and which partitions are faulted is the cluster's business.
        data_dir: if told {
            config.data_dir.display().to_string()
        } else {
            "–".to_string()
        },
        log_bytes: 0,
        faults: match storage_faults(broker) {
            faults if told || faults.is_empty() => faults,
            _ => vec!["degraded".to_string()],
        },
    }
}

fn topic_rows(topics: &[Arc<Topic>], activity: &Activity) -> Vec<TopicRow> {
    let mut rows: Vec<TopicRow> = topics
        .iter()
        .map(|topic| {
            let mut row = TopicRow {
                name: topic.name.clone(),
                partitions: topic.partitions.len(),
                rates: activity.topic_rates(&topic.name),
                ..TopicRow::default()
            };
            for p in &topic.partitions {
                row.size_bytes += p.log.size_bytes();
                row.records += p.log.log_end_offset() - p.log.log_start_offset();
                row.produced_bytes += p.produced_bytes.load(std::sync::atomic::Ordering::Relaxed);
                row.fetched_bytes += p.fetched_bytes.load(std::sync::atomic::Ordering::Relaxed);
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// Adds a partition's lag to a sum that is `None` until some partition has one.
fn add_lag(sum: Option<i64>, lag: i64) -> Option<i64> {
    Some(sum.unwrap_or(0) + lag)
}

fn group_row(
    group: GroupOverview,
    topics: &crate::topics::TopicRegistry,
    mut may_describe_topic: impl FnMut(&str) -> bool,
) -> GroupRow {
    let lag = group
        .offsets
        .iter()
        .filter(|(topic, _, _)| may_describe_topic(topic))
        .filter_map(|(topic, partition, committed)| {
            topics
                .log_end_offset(topic, *partition)
                .map(|end| lag(end, *committed))
        })
        .fold(None, add_lag);
    GroupRow {
        kind: kind(&group).to_string(),
        state: state_name(&group),
        protocol: group.protocol.clone(),
        members: group.members,
        lag,
        last_rebalance: group.last_rebalance.map(|r| LastRebalance {
            generation: r.generation,
            cause: r.cause.as_str().to_string(),
            outcome: r.outcome.as_str().to_string(),
            started_ms: r.started_ms,
            duration_ms: r.duration_ms(),
        }),
        group_id: group.group_id,
    }
}

async fn group_page(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let (caller, group) = match describable_group(&state, &headers, peer, &id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let mut may_describe_topic = state.topic_filter(&caller);
    let mut rebalances = state
        .broker
        .groups
        .rebalances(id.clone())
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    for record in &mut rebalances {
        hide_topics(record, &mut may_describe_topic);
    }
    let mut members = members(&state, &caller, &group).await;
    for member in &mut members {
        member
            .assigned
            .retain(|(topic, _)| may_describe_topic(topic));
        member.assigned.sort();
    }
    let mut partitions = partition_rows(
        &state.broker.topics,
        &group,
        &members,
        &mut may_describe_topic,
    );
    let mut history = state.activity.lag_history(&group.group_id);
    for row in &mut partitions {
        if let Some(series) = history.remove(&(row.topic.clone(), row.partition)) {
            row.lag_history = series;
        }
    }
    let view = GroupView {
        partition_query: PartitionQuery::from_pairs(
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        kind: kind(&group).to_string(),
        state: state_name(&group),
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        generation: group.generation,
        members,
        partitions,
        rebalances,
        now_ms: crate::now_ms(),
        group_id: group.group_id,
    };
    html_page(StatusCode::OK, starling_console::group::render(&view))
}

/// The group's members with their assignments, asked of the coordinator as DescribeGroups
/// (classic) or ConsumerGroupDescribe (consumer protocol) would be; none if it does not
/// answer.
async fn members(state: &AdminState, caller: &Caller, group: &GroupOverview) -> Vec<MemberRow> {
    let client = console_client(caller);
    let id = GroupId(StrBytes::from_string(group.group_id.clone()));
    let (version, request) = if group.consumer_state.is_some() {
        (
            0,
            GroupRequest::ConsumerGroupDescribe(
                ConsumerGroupDescribeRequest::default().with_group_ids(vec![id]),
            ),
        )
    } else {
        (
            5,
            GroupRequest::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![id])),
        )
    };
    let answer = tokio::time::timeout(
        OVERVIEW_TIMEOUT,
        state.broker.groups.call(version, client, request),
    )
    .await;
    match answer {
        Ok(Ok(GroupResponse::DescribeGroups(response))) => response
            .groups
            .into_iter()
            .flat_map(|g| g.members)
            .map(|m| MemberRow {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                epoch: None,
                assigned: starling_protocol::consumer_protocol::decode_assignment(
                    &m.member_assignment,
                )
                .map(|a| a.partitions)
                .unwrap_or_default(),
            })
            .collect(),
        Ok(Ok(GroupResponse::ConsumerGroupDescribe(response))) => response
            .groups
            .into_iter()
            .flat_map(|g| g.members)
            .map(|m| MemberRow {
                member_id: m.member_id.to_string(),
                instance_id: m.instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                epoch: Some(m.member_epoch),
                assigned: m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(move |p| (t.topic_name.to_string(), *p))
                    })
                    .collect(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Every partition a member owns or the group has an offset for, with owner, offsets and lag.
fn partition_rows(
    topics: &crate::topics::TopicRegistry,
    group: &GroupOverview,
    members: &[MemberRow],
    mut may_describe_topic: impl FnMut(&str) -> bool,
) -> Vec<PartitionRow> {
    let mut rows: BTreeMap<(String, i32), PartitionRow> = BTreeMap::new();
    let owners: HashMap<(&str, i32), &str> = members
        .iter()
        .flat_map(|m| {
            m.assigned
                .iter()
                .map(move |(t, p)| ((t.as_str(), *p), m.member_id.as_str()))
        })
        .collect();
    let keys = members
        .iter()
        .flat_map(|m| m.assigned.iter().cloned())
        .chain(group.offsets.iter().map(|(t, p, _)| (t.clone(), *p)));
    for (topic, partition) in keys {
        if !may_describe_topic(&topic) {
            continue;
        }
        rows.entry((topic.clone(), partition))
            .or_insert_with(|| PartitionRow {
                owner: owners
                    .get(&(topic.as_str(), partition))
                    .map(|o| o.to_string()),
                log_end_offset: topics.log_end_offset(&topic, partition),
                topic,
                partition,
                ..PartitionRow::default()
            });
    }
    for (topic, partition, committed) in &group.offsets {
        if let Some(row) = rows.get_mut(&(topic.clone(), *partition)) {
            row.committed_offset = Some(*committed);
            row.lag = row.log_end_offset.map(|end| lag(end, *committed));
        }
    }
    rows.into_values().collect()
}

/// The topic's effective configs as DescribeConfigs describes them: each value with where
/// it comes from, secrets hidden.
fn topic_configs(broker: &crate::Broker, topic: &Topic) -> Vec<ConfigRow> {
    use crate::config_keys::ConfigSource;
    let log = broker.topics.effective_log_config(topic);
    let mut rows: Vec<ConfigRow> = broker
        .dynamic
        .describe_topic(&topic.configs, &log)
        .into_iter()
        .map(|c| ConfigRow {
            value: c
                .value
                .filter(|_| !crate::config::is_sensitive_key(&c.name)),
            source: match c.source {
                ConfigSource::Topic => "topic",
                ConfigSource::DynamicBroker => "dynamic broker",
                ConfigSource::DynamicDefaultBroker => "dynamic cluster default",
                ConfigSource::StaticBroker => "broker",
                ConfigSource::Default => "default",
            }
            .to_string(),
            name: c.name,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The most record bytes one browse reads from a log, whatever the limit.
const BROWSE_MAX_BYTES: usize = 16 << 20;

async fn topic_page(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let caller = match state.caller(&headers, peer).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let topic = state
        .broker
        .topics
        .get(&name)
        .filter(|_| state.may(&caller, AclOperation::Describe, ResourceType::Topic, &name));
    let Some(topic) = topic else {
        // As Metadata: an undescribable topic reads as one that does not exist.
        return message_page(
            StatusCode::NOT_FOUND,
            "No such topic",
            &format!("There is no topic '{name}'."),
        );
    };
    let groups = match group_overviews(&state).await {
        Ok(groups) => groups,
        Err(page) => return page,
    };
    let group_rows: Vec<TopicGroupRow> = groups
        .iter()
        .filter(|g| g.offsets.iter().any(|(t, _, _)| *t == name))
        .filter(|g| {
            state.may(
                &caller,
                AclOperation::Describe,
                ResourceType::Group,
                &g.group_id,
            )
        })
        .map(|g| {
            let mine: Vec<&(String, i32, i64)> =
                g.offsets.iter().filter(|(t, _, _)| *t == name).collect();
            TopicGroupRow {
                group_id: g.group_id.clone(),
                state: state_name(g),
                lag: mine
                    .iter()
                    .filter_map(|(t, p, committed)| {
                        state
                            .broker
                            .topics
                            .log_end_offset(t, *p)
                            .map(|end| lag(end, *committed))
                    })
                    .fold(None, add_lag),
                partitions: mine.len(),
            }
        })
        .collect();
    let browse = BrowseQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Browsing reads records: Fetch's READ, not only DESCRIBE.
    let may_read = state.may(&caller, AclOperation::Read, ResourceType::Topic, &name);
    let principal = caller.principal.clone();
    let rates = state.activity.topic_rates(&name);
    let configs = topic_configs(&state.broker, &topic);
    let (messages, browse_error) = if may_read {
        match browse_messages(&topic, &browse).await {
            Ok(messages) => (messages, None),
            Err(e) => (Vec::new(), Some(e)),
        }
    } else {
        (
            Vec::new(),
            Some(format!("{principal} may not READ topic '{}'.", topic.name)),
        )
    };
    let rendered = tokio::task::spawn_blocking(move || {
        let view = TopicView {
            name: topic.name.clone(),
            topic_id: topic.id.to_string(),
            partitions: topic
                .partitions
                .iter()
                .map(|p| TopicPartitionRow {
                    partition: p.index,
                    log_start_offset: p.log.log_start_offset(),
                    log_end_offset: p.log.log_end_offset(),
                    size_bytes: p.log.size_bytes(),
                    segments: p.log.segment_count(),
                })
                .collect(),
            configs,
            rates,
            groups: group_rows,
            browse,
            messages,
            browse_error,
        };
        starling_console::topic::render(&view)
    })
    .await;
    match rendered {
        Ok(page) => html_page(StatusCode::OK, page),
        Err(_) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Rendering the topic failed.",
        ),
    }
}

/// Up to `query.limit` records of one partition from the offset (or time) asked for; an
/// offset below the log start reads from the start. Control records (transaction markers)
/// are left out, as consumers never see them.
async fn browse_messages(
    topic: &Topic,
    query: &BrowseQuery,
) -> Result<Vec<BrowsedMessage>, String> {
    let Some(partition) = topic.partition(query.partition) else {
        return Err(format!(
            "Topic '{}' has no partition {} (it has {}).",
            topic.name,
            query.partition,
            topic.partitions.len()
        ));
    };
    let log = &partition.log;
    let mut offset = match query.timestamp_ms {
        Some(ms) => match log.offset_for_timestamp(ms).await {
            Ok(Some((offset, _))) => offset,
            Ok(None) => return Ok(Vec::new()),
            Err(e) => return Err(format!("Reading the time index failed: {e}")),
        },
        None => query.offset.max(log.log_start_offset()),
    };
    let mut out = Vec::new();
    let mut read_bytes = 0usize;
    while out.len() < query.limit && offset < log.log_end_offset() && read_bytes < BROWSE_MAX_BYTES
    {
        let read = log
            .read(
                offset,
                1 << 20,
                true,
                starling_log::Isolation::ReadUncommitted,
            )
            .await
            .map_err(|e| format!("Reading partition {} failed: {e}", partition.index))?;
        if read.records.is_empty() {
            break;
        }
        read_bytes += read.records.len();
        let mut bytes = read.records.clone();
        let mut next = offset;
        while bytes.len() >= 12 && out.len() < query.limit {
            let len = i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
            let total = 12 + usize::try_from(len).unwrap_or(0);
            if len < 0 || bytes.len() < total {
                break;
            }
            let mut batch = bytes.split_to(total);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch)
                .map_err(|e| format!("A stored batch does not decode: {e}"))?;
            for record in set.records {
                next = next.max(record.offset + 1);
                if record.control || record.offset < offset || out.len() >= query.limit {
                    continue;
                }
                out.push(BrowsedMessage {
                    partition: partition.index,
                    offset: record.offset,
                    timestamp_ms: record.timestamp,
                    key: record.key.map(|k| k.to_vec()),
                    value: record.value.map(|v| v.to_vec()),
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.map(|v| v.to_vec())))
                        .collect(),
                });
            }
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(out)
}
