//! Which live node should own a partition or a group: rendezvous (highest random weight)
//! hashing over the live nodes. Every node computes the same answer from the same node list,
//! with no coordination; ownership is spread evenly; and when a node joins or leaves, only
//! what it gains or loses moves — everything else stays where it was, so a node failure moves
//! about 1/N of the partitions and groups, not all of them.
//!
//! The answer only says which node should *try* to take the lease ([`crate::lease`]); the
//! lease decides who owns it.

/// The node (of `nodes`, any order) that should own `key` (e.g. `partition:<topic_id>:<p>` or
/// `group:<id>`); `None` with no nodes.
pub fn owner(key: &str, nodes: &[i32]) -> Option<i32> {
    nodes
        .iter()
        .copied()
        .max_by_key(|&node| (weight(key, node), node))
}

/// A 64-bit hash of (key, node): FNV-1a over the key's bytes and the node id, then a
/// SplitMix64 finaliser so that nearby node ids give unrelated weights. Fixed forever: nodes
/// of different versions must agree.
fn weight(key: &str, node: i32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain(node.to_be_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("partition:topic-{}:{}", i / 50, i % 50))
            .collect()
    }

    #[test]
    fn no_nodes_no_owner_and_one_node_owns_everything() {
        assert_eq!(owner("group:g", &[]), None);
        assert!(keys(100).iter().all(|k| owner(k, &[7]) == Some(7)));
    }

    #[test]
    fn the_weights_are_fixed() {
        // Nodes of different Starling versions must agree: these values never change.
        assert_eq!(weight("group:g", 1), 0x99af_01a2_12d8_a5db);
        assert_eq!(
            owner("group:orders", &[1, 2, 3]),
            owner("group:orders", &[3, 1, 2])
        );
        let owners: Vec<Option<i32>> = ["group:a", "group:b", "group:c", "group:d"]
            .iter()
            .map(|k| owner(k, &[1, 2, 3]))
            .collect();
        assert_eq!(owners, FIXED_OWNERS);
    }
    const FIXED_OWNERS: [Option<i32>; 4] = [Some(1), Some(1), Some(3), Some(1)];

    #[test]
    fn ten_thousand_partitions_spread_evenly_over_three_nodes() {
        let nodes = [1, 2, 3];
        let mut counts = [0usize; 3];
        for key in keys(10_000) {
            counts[(owner(&key, &nodes).unwrap() - 1) as usize] += 1;
        }
        for count in counts {
            assert!((3_000..=3_700).contains(&count), "{counts:?}");
        }
    }

    proptest! {
        #[test]
        fn a_node_leaving_moves_only_what_it_owned_and_a_node_joining_takes_only_for_itself(
            nodes in proptest::collection::btree_set(0i32..50, 2..8),
            gone in any::<proptest::sample::Index>(),
        ) {
            let nodes: Vec<i32> = nodes.into_iter().collect();
            let leaving = nodes[gone.index(nodes.len())];
            let rest: Vec<i32> = nodes.iter().copied().filter(|&n| n != leaving).collect();
            for key in keys(300) {
                let before = owner(&key, &nodes).unwrap();
                let after = owner(&key, &rest).unwrap();
                if before != leaving {
                    prop_assert_eq!(before, after, "{} moved off a node that stayed", key);
                }
                // Joining is leaving backwards: only keys the joiner wins move, to it.
                if after != before {
                    prop_assert_eq!(before, leaving);
                }
            }
        }
    }
}
