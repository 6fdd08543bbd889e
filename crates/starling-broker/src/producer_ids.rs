//! Producer ids for idempotent producers: handed out one by one from blocks reserved in the
//! metadata storage ([`MetadataBackend::reserve_producer_ids`]), so no id is handed out twice,
//! across restarts, `kill -9` and (with PostgreSQL) nodes: a restart skips what was left of its
//! block.

use starling_meta::backend::MetadataBackend;
use starling_meta::MetaError;
use tokio::sync::Mutex;

use crate::storage::MetadataStorage;

/// How many ids one reservation takes (Kafka's block size).
const BLOCK: u32 = 1000;

pub struct ProducerIds {
    store: MetadataStorage,
    /// The next id to hand out and the end of the reserved block (`next == end`: none left).
    block: Mutex<(i64, i64)>,
}

impl ProducerIds {
    pub fn new(store: MetadataStorage) -> ProducerIds {
        ProducerIds {
            store,
            block: Mutex::new((0, 0)),
        }
    }

    /// A producer id nobody has had; reserves a new block (one durable write) when the current
    /// one is used up.
    pub async fn next(&self) -> Result<i64, MetaError> {
        let mut block = self.block.lock().await;
        if block.0 == block.1 {
            let first = self.store.reserve_producer_ids(BLOCK).await?;
            *block = (first, first + i64::from(BLOCK));
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use starling_meta::MetadataStore;

    use super::*;

    #[tokio::test]
    async fn ids_are_unique_across_blocks_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let ids = ProducerIds::new(Arc::new(MetadataStore::open(&path).unwrap()).into());
        let mut first = Vec::new();
        for _ in 0..1500 {
            first.push(ids.next().await.unwrap());
        }
        assert_eq!(first, (0..1500).collect::<Vec<_>>());
        drop(ids);
        let ids = ProducerIds::new(Arc::new(MetadataStore::open(&path).unwrap()).into());
        // The rest of the second block is skipped, never reused.
        assert_eq!(ids.next().await.unwrap(), 2000);
    }
}
