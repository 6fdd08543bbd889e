//! The interface both assignors share: finding them by name, and rejecting inconsistent
//! topic metadata.

use super::*;
use crate::assignor::{
    by_name, AssignorError, RangeAssignor, UniformAssignor, DEFAULT_ASSIGNORS, RANGE_ASSIGNOR_NAME,
    UNIFORM_ASSIGNOR_NAME,
};

#[test]
fn built_in_assignors_are_found_by_short_name_and_by_kafka_class_name() {
    assert_eq!(by_name("uniform").unwrap().name(), UNIFORM_ASSIGNOR_NAME);
    assert_eq!(by_name("range").unwrap().name(), RANGE_ASSIGNOR_NAME);
    assert_eq!(
        by_name("org.apache.kafka.coordinator.group.assignor.UniformAssignor")
            .unwrap()
            .name(),
        "uniform"
    );
    assert_eq!(
        by_name("org.apache.kafka.coordinator.group.assignor.RangeAssignor")
            .unwrap()
            .name(),
        "range"
    );
    assert!(by_name("sticky").is_none());
    assert!(by_name("Uniform").is_none());
    assert_eq!(DEFAULT_ASSIGNORS, ["uniform", "range"]);
}

#[test]
fn a_topic_filed_under_another_id_is_rejected() {
    let mut topics = topics(&[(0, 3)]);
    topics.insert(topic_id(1), TopicMetadata::new(topic_id(2), "t2", 1));
    let group = group(&[("a", &[0, 1])]);
    for assignor in DEFAULT_ASSIGNORS.map(|name| by_name(name).unwrap()) {
        assert_eq!(
            assignor.assign(&group, &topics),
            Err(AssignorError::TopicIdMismatch {
                key: topic_id(1),
                topic: topic_id(2),
                name: "t2".into()
            }),
            "{assignor:?}"
        );
    }
}

#[test]
fn a_partition_count_past_i32_is_rejected() {
    let topics = topics(&[(0, 1 << 31)]);
    let group = group(&[("a", &[0])]);
    let error = AssignorError::TooManyPartitions {
        topic: topic_id(0),
        partitions: 1 << 31,
    };
    assert_eq!(UniformAssignor.assign(&group, &topics), Err(error.clone()));
    assert_eq!(RangeAssignor.assign(&group, &topics), Err(error));
}

#[test]
fn every_member_is_in_the_result_even_with_nothing_to_assign() {
    let group = group(&[("a", &[]), ("b", &[3])]);
    for assignor in DEFAULT_ASSIGNORS.map(|name| by_name(name).unwrap()) {
        let assignment = assignor.assign(&group, &topics(&[(0, 2)])).unwrap();
        assert_eq!(
            assignment,
            GroupAssignment::from([
                ("a".to_string(), MemberAssignment::new()),
                ("b".to_string(), MemberAssignment::new()),
            ]),
            "{assignor:?}"
        );
    }
}
