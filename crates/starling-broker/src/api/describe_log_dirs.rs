//! DescribeLogDirs: Starling's one log directory, the data dir, with the size of each
//! partition's log (its segment files), an offset lag of 0 and no future replicas, as Kafka's
//! `ReplicaManager.describeLogDirs` answers for a leader: null topics mean every partition;
//! topics and partitions the broker does not have are left out, not errors. From v4 the
//! directory's total and usable bytes (statvfs; -1 when that fails).

use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use starling_acl::AclOperation;

use super::RequestContext;
use crate::topics::Topic;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Kafka's rule: DESCRIBE on the cluster; without it no log dirs, and (v3+) the error.
    if !ctx.authorize_cluster(broker, AclOperation::Describe) {
        let response = DescribeLogDirsResponse::default();
        return if ctx.api_version >= 3 {
            response
                .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code())
        } else {
            response
        };
    }
    let topics: Vec<DescribeLogDirsTopic> = match request.topics {
        None => broker
            .topics
            .all()
            .iter()
            .map(|topic| describe(topic, None))
            .collect(),
        Some(wanted) => wanted
            .into_iter()
            .filter_map(|t| {
                let topic = broker.topics.get(t.topic.as_str())?;
                let described = describe(&topic, Some(&t.partitions));
                (!described.partitions.is_empty()).then_some(described)
            })
            .collect(),
    };
    let dir = &broker.config.data_dir;
    let (total, usable) = disk_space(dir).unwrap_or((-1, -1));
    let log_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(log_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}

/// The topic's partitions, or those of them in `only`.
fn describe(topic: &Topic, only: Option<&[i32]>) -> DescribeLogDirsTopic {
    let partitions = topic
        .partitions
        .iter()
        .filter(|p| only.is_none_or(|wanted| wanted.contains(&p.index)))
        .map(|p| {
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(i64::try_from(p.log.size_bytes()).unwrap_or(i64::MAX))
                .with_offset_lag(0)
                .with_is_future_key(false)
        })
        .collect();
    DescribeLogDirsTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
        .with_partitions(partitions)
}

/// Total and usable (available to an unprivileged user) bytes of the file system holding
/// `dir`, as Java's `FileStore.getTotalSpace` and `getUsableSpace` report them.
fn disk_space(dir: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stats` is writable memory of the right type;
    // statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so `stats` is initialised.
    let stats = unsafe { stats.assume_init() };
    let fragment = stats.f_frsize as u128;
    let bytes = |blocks: u128| i64::try_from(blocks * fragment).ok();
    Some((
        bytes(stats.f_blocks as u128)?,
        bytes(stats.f_bavail as u128)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_space_of_an_existing_dir_is_positive_and_usable_at_most_total() {
        let (total, usable) = disk_space(Path::new(".")).unwrap();
        assert!(
            total > 0 && usable >= 0 && usable <= total,
            "{total} {usable}"
        );
    }

    #[test]
    fn disk_space_of_a_missing_dir_is_unknown() {
        assert_eq!(disk_space(Path::new("/no/such/dir/here")), None);
    }
}
