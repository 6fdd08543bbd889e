//! Producer ids for idempotent producers: handed out one by one from blocks reserved in the
//! metadata store ([`starling_meta::MetadataStore::reserve_producer_ids`]), so no id is handed
//! out twice, across restarts and `kill -9` too (a restart skips what was left of its block).

use std::sync::Arc;

use parking_lot::Mutex;
use starling_meta::{MetaError, MetadataStore};

/// How many ids one reservation takes (Kafka's block size).
const BLOCK: u32 = 1000;

pub struct ProducerIds {
    store: Arc<MetadataStore>,
    /// The next id to hand out and the end of the reserved block (`next == end`: none left).
    block: Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub fn new(store: Arc<MetadataStore>) -> ProducerIds {
        ProducerIds {
            store,
            block: Mutex::new((0, 0)),
        }
    }

    /// A producer id nobody has had; reserves a new block (one durable write) when the current
    /// one is used up.
    pub fn next(&self) -> Result<i64, MetaError> {
        let mut block = self.block.lock();
        if block.0 == block.1 {
            let first = self.store.reserve_producer_ids(BLOCK)?;
            *block = (first, first + i64::from(BLOCK));
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_blocks_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let ids = ProducerIds::new(Arc::new(MetadataStore::open(&path).unwrap()));
        let first: Vec<i64> = (0..1500).map(|_| ids.next().unwrap()).collect();
        assert_eq!(first, (0..1500).collect::<Vec<_>>());
        drop(ids);
        let ids = ProducerIds::new(Arc::new(MetadataStore::open(&path).unwrap()));
        // The rest of the second block is skipped, never reused.
        assert_eq!(ids.next().unwrap(), 2000);
    }
}
