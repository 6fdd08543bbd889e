//! Which sealed segments retention may delete.
//!
//! Kept apart from the I/O so the rule is easy to read and test: only a
//! prefix of the sealed segments (oldest first) is ever deleted, so the log
//! stays contiguous and its start offset simply moves up. The active segment
//! is never passed in, so it is never deleted.

/// What retention needs to know about one sealed segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentFacts {
    /// Bytes in the segment's data file.
    pub size: u64,
    /// Largest batch timestamp, or the file's mtime when there is none.
    pub newest_ms: i64,
}

/// How many of the oldest `sealed` segments to delete, given the whole log's
/// size (active segment included).
///
/// A segment goes when its newest timestamp is older than `now - retention_ms`,
/// or when the log without it would still be at least `retention_bytes`.
/// Negative limits are treated as "unlimited", like Kafka's -1.
pub(crate) fn deletable_prefix(
    sealed: &[SegmentFacts],
    total_size: u64,
    now_ms: i64,
    retention_ms: Option<i64>,
    retention_bytes: Option<u64>,
) -> usize {
    let cutoff = retention_ms
        .filter(|&ms| ms >= 0)
        .map(|ms| now_ms.saturating_sub(ms));
    let mut remaining = total_size;
    let mut count = 0;
    for facts in sealed {
        let expired = cutoff.is_some_and(|cutoff| facts.newest_ms < cutoff);
        let oversized = retention_bytes.is_some_and(|limit| {
            remaining
                .checked_sub(facts.size)
                .is_some_and(|rest| rest >= limit)
        });
        if !(expired || oversized) {
            break;
        }
        remaining = remaining.saturating_sub(facts.size);
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(size: u64, newest_ms: i64) -> SegmentFacts {
        SegmentFacts { size, newest_ms }
    }

    #[test]
    fn time_retention_deletes_only_an_expired_prefix() {
        let sealed = [facts(10, 100), facts(10, 9_500), facts(10, 100)];
        assert_eq!(deletable_prefix(&sealed, 40, 10_000, Some(1_000), None), 1);
    }

    #[test]
    fn size_retention_keeps_at_least_the_limit() {
        let sealed = [facts(10, 0), facts(10, 0), facts(10, 0)];
        // 40 bytes in all; deleting two leaves 20 >= 15, a third would leave 10 < 15.
        assert_eq!(deletable_prefix(&sealed, 40, 0, None, Some(15)), 2);
        assert_eq!(deletable_prefix(&sealed, 40, 0, None, Some(40)), 0);
        assert_eq!(deletable_prefix(&sealed, 40, 0, None, Some(0)), 3);
    }

    #[test]
    fn negative_or_missing_limits_keep_everything() {
        let sealed = [facts(10, 0)];
        assert_eq!(deletable_prefix(&sealed, 20, i64::MAX, Some(-1), None), 0);
        assert_eq!(deletable_prefix(&sealed, 20, i64::MAX, None, None), 0);
    }
}
