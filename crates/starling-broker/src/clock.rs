//! The clocks the group coordinator's runtime reads: a monotonic clock for timer deadlines and
//! the wall clock for the timestamps Kafka stores (see [`starling_group::Now`]).
//!
//! The monotonic clock is tokio's: milliseconds since the [`Clocks`] were made, and a deadline
//! on it converts back into the [`tokio::time::Instant`] the runtime sleeps until. A test that
//! pauses tokio's time (`#[tokio::test(start_paused = true)]`) therefore advances it by hand with
//! `tokio::time::advance`, as the core's tests do with their simulated `now`. The wall clock is
//! injected: the system's by default, any function in tests (one that jumps, say). [`now_ms`] is
//! the system's wall clock, as the rest of the broker reads it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use starling_group::{Millis, Now};
use tokio::time::Instant;

/// A source of wall-clock time: milliseconds since the Unix epoch.
pub type WallClock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// The runtime's two clocks.
#[derive(Clone)]
pub struct Clocks {
    /// Monotonic time 0.
    origin: Instant,
    wall: WallClock,
}

impl Clocks {
    /// tokio's monotonic clock and the system's wall clock.
    pub fn system() -> Clocks {
        Clocks::with_wall_clock(Arc::new(crate::now_ms))
    }

    /// tokio's monotonic clock and the given wall clock.
    pub fn with_wall_clock(wall: WallClock) -> Clocks {
        Clocks {
            origin: Instant::now(),
            wall,
        }
    }

    /// Both clocks, read now.
    pub fn now(&self) -> Now {
        Now {
            monotonic: self.monotonic_ms(self.origin.elapsed()),
            wall: (self.wall)(),
        }
    }

    /// The instant a monotonic deadline falls on (deadlines in the past are now).
    pub fn instant_of(&self, deadline: Millis) -> Instant {
        let at = self.origin + Duration::from_millis(u64::try_from(deadline).unwrap_or(0));
        at.max(Instant::now())
    }

    fn monotonic_ms(&self, elapsed: Duration) -> Millis {
        Millis::try_from(elapsed.as_millis()).unwrap_or(Millis::MAX)
    }
}

impl std::fmt::Debug for Clocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clocks")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Wall-clock milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_monotonic_clock_follows_tokio_time_and_ignores_the_wall_clock() {
        let wall = Arc::new(AtomicI64::new(1_000_000));
        let reader = wall.clone();
        let clocks = Clocks::with_wall_clock(Arc::new(move || reader.load(Ordering::SeqCst)));
        assert_eq!(clocks.now().monotonic, 0);
        tokio::time::advance(Duration::from_millis(1500)).await;
        wall.store(5, Ordering::SeqCst);
        assert_eq!(
            clocks.now(),
            Now {
                monotonic: 1500,
                wall: 5
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_converts_back_into_the_instant_it_names() {
        let clocks = Clocks::system();
        let origin = Instant::now();
        assert_eq!(clocks.instant_of(250), origin + Duration::from_millis(250));
        tokio::time::advance(Duration::from_millis(1000)).await;
        // A deadline already past is now.
        assert_eq!(clocks.instant_of(250), Instant::now());
        assert_eq!(clocks.instant_of(-5), Instant::now());
    }
}
