//! The bound on request memory (`queued.max.request.bytes`): the bytes of every request frame
//! being read or waiting for its answer are counted against one budget for the whole broker.
//!
//! A connection reserves its frame's declared size after reading the size prefix and before
//! reading the body, and gives it back once the request is answered. When the bytes are not
//! free the connection waits — it reads nothing more, so TCP pushes back on the client — and
//! tries again whenever any reservation is returned. As in Kafka's memory pool, a waiting large
//! frame does not hold up a smaller one that fits now, and a frame is reserved whole, so no two
//! half-read frames can each hold part of the budget while waiting for the rest. The buffer
//! itself still grows only as bytes arrive, so a reservation costs memory only for what the
//! client actually sends; a client that stalls mid-frame keeps its reservation only until
//! `socket.request.read.timeout.ms` closes its connection.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The broker-wide budget; unbounded when `queued.max.request.bytes=-1`. Clones share it.
#[derive(Clone)]
pub struct RequestMemory {
    budget: Option<Arc<Budget>>,
}

struct Budget {
    limit: usize,
    available: Mutex<usize>,
    /// Woken whenever bytes are returned.
    returned: Notify,
}

/// Bytes held for one request until it is answered.
pub struct Reservation {
    held: Option<(Arc<Budget>, usize)>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some((budget, bytes)) = self.held.take() {
            *budget.available.lock() += bytes;
            budget.returned.notify_waiters();
        }
    }
}

impl RequestMemory {
    /// A budget of `limit` bytes (`None`: unbounded). The limit must be at least the largest
    /// frame a client may send (`socket.request.max.bytes`), or that frame would wait forever;
    /// a larger reservation is cut to the limit.
    pub fn new(limit: Option<usize>) -> RequestMemory {
        RequestMemory {
            budget: limit.map(|limit| {
                Arc::new(Budget {
                    limit,
                    available: Mutex::new(limit),
                    returned: Notify::new(),
                })
            }),
        }
    }

    /// Waits until `bytes` are free and holds them until the reservation is dropped.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let Some(budget) = &self.budget else {
            return Reservation { held: None };
        };
        let bytes = bytes.min(budget.limit);
        loop {
            // Registered before looking, so a return between the look and the wait is not missed.
            let returned = budget.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            {
                let mut available = budget.available.lock();
                if *available >= bytes {
                    *available -= bytes;
                    return Reservation {
                        held: Some((budget.clone(), bytes)),
                    };
                }
            }
            returned.await;
        }
    }

    /// Bytes currently reserved (0 when unbounded).
    pub fn in_use(&self) -> usize {
        match &self.budget {
            Some(budget) => budget.limit - *budget.available.lock(),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_reservation_beyond_the_budget_waits_until_another_is_returned() {
        let memory = Arc::new(RequestMemory::new(Some(100)));
        let first = memory.reserve(80).await;
        assert_eq!(memory.in_use(), 80);
        let waiting = tokio::spawn({
            let memory = memory.clone();
            async move {
                let _second = memory.reserve(50).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "50 bytes were granted with only 20 free"
        );
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting reservation was granted once bytes were returned")
            .unwrap();
        assert_eq!(memory.in_use(), 0);
    }

    #[tokio::test]
    async fn a_smaller_reservation_that_fits_is_not_held_up_by_a_larger_one_waiting() {
        let memory = Arc::new(RequestMemory::new(Some(100)));
        let first = memory.reserve(60).await;
        let large = tokio::spawn({
            let memory = memory.clone();
            async move {
                let _large = memory.reserve(90).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let small = tokio::time::timeout(Duration::from_secs(1), memory.reserve(30))
            .await
            .expect("30 free bytes were not granted while 90 were awaited");
        assert_eq!(memory.in_use(), 90);
        drop(small);
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), large)
            .await
            .expect("the large reservation was granted once the others were returned")
            .unwrap();
    }

    #[tokio::test]
    async fn a_reservation_larger_than_the_budget_is_cut_to_it() {
        let memory = RequestMemory::new(Some(100));
        let all = tokio::time::timeout(Duration::from_secs(1), memory.reserve(1000))
            .await
            .unwrap();
        assert_eq!(memory.in_use(), 100);
        drop(all);
        assert_eq!(memory.in_use(), 0);
    }

    #[tokio::test]
    async fn an_unbounded_budget_never_waits() {
        let memory = RequestMemory::new(None);
        let _a = memory.reserve(usize::MAX).await;
        let _b = memory.reserve(usize::MAX).await;
        assert_eq!(memory.in_use(), 0);
    }
}
