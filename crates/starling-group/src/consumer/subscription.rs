//! What a consumer group's members subscribe to, in topic ids: topic names and KIP-848
//! regular expressions resolved against the topics the broker has ([`TopicsImage`]), and the
//! digest of the subscribed topics that tells the coordinator when a topic change must bump
//! the group epoch.
//!
//! Regular expressions use the `regex` crate's syntax (RE2's, as Kafka's RE2/J) and must match
//! the whole topic name, as Kafka's `Pattern.matcher(topic).matches()` does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;
use uuid::Uuid;

use super::{ConsumerGroup, ConsumerMemberValue};
use crate::assignor::TopicMetadata;

/// Topics the coordinator knows of, by id and by name.
#[derive(Debug, Clone, Default)]
pub struct TopicsImage {
    by_id: BTreeMap<Uuid, TopicMetadata>,
    by_name: BTreeMap<String, Uuid>,
}

impl TopicsImage {
    pub fn new(topics: impl IntoIterator<Item = TopicMetadata>) -> TopicsImage {
        let mut image = TopicsImage::default();
        for topic in topics {
            image.by_name.insert(topic.name.clone(), topic.id);
            image.by_id.insert(topic.id, topic);
        }
        image
    }

    pub fn by_id(&self) -> &BTreeMap<Uuid, TopicMetadata> {
        &self.by_id
    }

    pub fn id_of(&self, name: &str) -> Option<Uuid> {
        self.by_name.get(name).copied()
    }

    pub fn get(&self, id: &Uuid) -> Option<&TopicMetadata> {
        self.by_id.get(id)
    }
}

/// Compiled regular expressions, by pattern (a pattern that does not compile is `None`), and
/// the topics each one matched in the current topics image (cleared when it changes), so a
/// regex member's heartbeat does not match every topic name again.
#[derive(Debug, Default)]
pub(crate) struct RegexCache {
    compiled: HashMap<String, Option<Regex>>,
    matched: HashMap<String, BTreeSet<Uuid>>,
}

impl RegexCache {
    /// The topics changed: what each pattern matched must be worked out again.
    pub fn topics_changed(&mut self) {
        self.matched.clear();
    }

    /// The ids of the topics whose whole name `pattern` matches (none if it does not compile).
    pub fn matching(&mut self, pattern: &str, topics: &TopicsImage) -> &BTreeSet<Uuid> {
        if !self.matched.contains_key(pattern) {
            let ids = match self.compile(pattern) {
                Ok(regex) => topics
                    .by_name
                    .iter()
                    .filter(|(name, _)| regex.is_match(name))
                    .map(|(_, id)| *id)
                    .collect(),
                Err(_) => BTreeSet::new(),
            };
            self.matched.insert(pattern.to_string(), ids);
        }
        &self.matched[pattern]
    }

    /// The whole-name matcher for `pattern`, or the compile error.
    pub fn compile(&mut self, pattern: &str) -> Result<&Regex, String> {
        let entry = self
            .compiled
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok());
        match entry {
            Some(regex) => Ok(regex),
            None => Err(format!(
                "SubscribedTopicRegex `{pattern}` is not a valid regular expression."
            )),
        }
    }
}

/// The ids of the topics one member subscribes to (topics that do not exist are left out).
pub(crate) fn subscribed_ids(
    member: &ConsumerMemberValue,
    topics: &TopicsImage,
    regexes: &mut RegexCache,
) -> BTreeSet<Uuid> {
    let mut ids: BTreeSet<Uuid> = member
        .subscribed_topic_names
        .iter()
        .filter_map(|name| topics.id_of(name))
        .collect();
    if let Some(pattern) = &member.subscribed_topic_regex {
        ids.extend(regexes.matching(pattern, topics).iter().copied());
    }
    ids
}

/// The union of every member's subscribed topic ids.
pub(crate) fn group_subscribed_ids(
    group: &ConsumerGroup,
    topics: &TopicsImage,
    regexes: &mut RegexCache,
) -> BTreeSet<Uuid> {
    let mut ids = BTreeSet::new();
    for member in group.members.values() {
        ids.extend(subscribed_ids(&member.subscription, topics, regexes));
    }
    ids
}

/// The names of the topics a group's members subscribe to (regexes resolved).
pub(crate) fn group_subscribed_names(
    group: &ConsumerGroup,
    topics: &TopicsImage,
    regexes: &mut RegexCache,
) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for member in group.members.values() {
        names.extend(member.subscription.subscribed_topic_names.iter().cloned());
    }
    let ids = group_subscribed_ids(group, topics, regexes);
    names.extend(
        ids.iter()
            .filter_map(|id| topics.get(id).map(|t| t.name.clone())),
    );
    names
}

/// A digest of the subscribed topics (id, name, partition count), stable across builds and
/// platforms (FNV-1a) because it is stored.
pub(crate) fn metadata_hash(subscribed: &BTreeSet<Uuid>, topics: &TopicsImage) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for id in subscribed {
        let Some(topic) = topics.get(id) else {
            continue;
        };
        feed(id.as_bytes());
        feed(&(topic.name.len() as u64).to_be_bytes());
        feed(topic.name.as_bytes());
        feed(&topic.partitions.to_be_bytes());
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> TopicsImage {
        TopicsImage::new([
            TopicMetadata::new(Uuid::from_u128(1), "orders", 3),
            TopicMetadata::new(Uuid::from_u128(2), "orders-eu", 2),
            TopicMetadata::new(Uuid::from_u128(3), "payments", 1),
        ])
    }

    #[test]
    fn names_and_whole_name_regexes_resolve_to_existing_topic_ids() {
        let member = ConsumerMemberValue {
            subscribed_topic_names: vec!["payments".into(), "missing".into()],
            subscribed_topic_regex: Some("orders-.*".into()),
            ..ConsumerMemberValue::default()
        };
        let ids = subscribed_ids(&member, &image(), &mut RegexCache::default());
        assert_eq!(ids, [Uuid::from_u128(2), Uuid::from_u128(3)].into());
        // `order` matches only as a whole name.
        let member = ConsumerMemberValue {
            subscribed_topic_regex: Some("order".into()),
            ..ConsumerMemberValue::default()
        };
        assert!(subscribed_ids(&member, &image(), &mut RegexCache::default()).is_empty());
    }

    #[test]
    fn what_a_regex_matched_is_worked_out_again_when_the_topics_change() {
        let member = ConsumerMemberValue {
            subscribed_topic_regex: Some("orders.*".into()),
            ..ConsumerMemberValue::default()
        };
        let mut regexes = RegexCache::default();
        let first = TopicsImage::new([TopicMetadata::new(Uuid::from_u128(1), "orders", 1)]);
        assert_eq!(subscribed_ids(&member, &first, &mut regexes).len(), 1);
        let second = image();
        // Until told, the cached match stands; once told, the new topic is matched.
        assert_eq!(subscribed_ids(&member, &second, &mut regexes).len(), 1);
        regexes.topics_changed();
        assert_eq!(subscribed_ids(&member, &second, &mut regexes).len(), 2);
    }

    #[test]
    fn an_invalid_regex_is_an_error_with_the_pattern() {
        let err = RegexCache::default().compile("[").unwrap_err();
        assert!(err.contains('['), "{err}");
    }

    #[test]
    fn the_hash_changes_with_partition_counts_names_and_membership_of_topics() {
        let ids: BTreeSet<Uuid> = [Uuid::from_u128(1)].into();
        let before = metadata_hash(&ids, &image());
        let grown = TopicsImage::new([TopicMetadata::new(Uuid::from_u128(1), "orders", 4)]);
        assert_ne!(before, metadata_hash(&ids, &grown));
        let renamed = TopicsImage::new([TopicMetadata::new(Uuid::from_u128(1), "orderz", 3)]);
        assert_ne!(before, metadata_hash(&ids, &renamed));
        assert_ne!(before, metadata_hash(&BTreeSet::new(), &image()));
        assert_eq!(before, metadata_hash(&ids, &image()));
        // Pinned: the digest is stored, so it must not change between builds.
        assert_eq!(
            metadata_hash(&BTreeSet::new(), &image()),
            0xcbf2_9ce4_8422_2325
        );
    }
}
