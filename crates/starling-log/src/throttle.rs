//! Bounding the cleaner's disk I/O (Kafka's `log.cleaner.io.max.bytes.per.second`).
//!
//! The cleaner reports every byte it reads and writes to a [`Throttle`] before it goes on,
//! and the throttle may block (the broker runs the cleaner on a blocking thread, so sleeping
//! is fine). [`Unthrottled`] never waits; [`TokenBucket`] lets bytes through at a fixed rate
//! with a bounded burst. Its clock and its sleep are a [`Clock`], so tests drive it with a fake
//! clock and check the waits it asks for, without any real time passing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Whether bytes were read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    Read,
    Write,
}

/// Told of every byte the cleaner reads or writes, before it continues; may block to slow it.
pub trait Throttle {
    /// `bytes` were just read or written.
    fn acquire(&mut self, kind: IoKind, bytes: u64);
}

/// A throttle that never waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unthrottled;

impl Throttle for Unthrottled {
    fn acquire(&mut self, _kind: IoKind, _bytes: u64) {}
}

/// One throttle shared by several cleaners (Kafka's cleaner threads share one throttler):
/// clones use the same inner throttle, one at a time, so its waits are shared out between them.
#[derive(Debug, Default)]
pub struct SharedThrottle<T>(Arc<Mutex<T>>);

impl<T> SharedThrottle<T> {
    pub fn new(inner: T) -> SharedThrottle<T> {
        SharedThrottle(Arc::new(Mutex::new(inner)))
    }
}

impl<T> Clone for SharedThrottle<T> {
    fn clone(&self) -> Self {
        SharedThrottle(Arc::clone(&self.0))
    }
}

impl<T: Throttle> Throttle for SharedThrottle<T> {
    fn acquire(&mut self, kind: IoKind, bytes: u64) {
        self.0.lock().acquire(kind, bytes);
    }
}

/// Time for a [`TokenBucket`]: a monotonic clock and a way to wait.
pub trait Clock {
    /// Time since some fixed instant.
    fn now(&self) -> Duration;
    /// Blocks for `duration`.
    fn sleep(&mut self, duration: Duration);
}

/// The real clock: [`Instant`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A token bucket of bytes: it fills at `bytes_per_second` up to `burst_bytes` and every byte
/// read or written (reads and writes alike, as Kafka's cleaner counts them) takes one. A
/// request for more than the bucket holds drives it into debt and sleeps until the debt is
/// repaid, so over any run the waits add up to (bytes − what the bucket held) / rate.
#[derive(Debug)]
pub struct TokenBucket<C: Clock = SystemClock> {
    clock: C,
    bytes_per_second: f64,
    burst_bytes: f64,
    /// Bytes that may pass without waiting.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Duration,
}

impl TokenBucket<SystemClock> {
    /// A bucket on the real clock. It starts full.
    pub fn new(bytes_per_second: f64, burst_bytes: u64) -> TokenBucket<SystemClock> {
        TokenBucket::with_clock(bytes_per_second, burst_bytes, SystemClock::default())
    }
}

impl<C: Clock> TokenBucket<C> {
    /// A bucket on `clock`, starting full. A rate that is not a positive number means no limit.
    pub fn with_clock(bytes_per_second: f64, burst_bytes: u64, clock: C) -> TokenBucket<C> {
        let updated = clock.now();
        TokenBucket {
            clock,
            bytes_per_second,
            burst_bytes: burst_bytes as f64,
            tokens: burst_bytes as f64,
            updated,
        }
    }

    /// The clock (for tests to look at a fake one).
    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn refill(&mut self) {
        let now = self.clock.now();
        let elapsed = now.saturating_sub(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.bytes_per_second).min(self.burst_bytes);
    }
}

impl<C: Clock> Throttle for TokenBucket<C> {
    fn acquire(&mut self, _kind: IoKind, bytes: u64) {
        if !(self.bytes_per_second > 0.0 && self.bytes_per_second.is_finite()) {
            return;
        }
        self.refill();
        self.tokens -= bytes as f64;
        if self.tokens < 0.0 {
            let wait = Duration::try_from_secs_f64(-self.tokens / self.bytes_per_second)
                .unwrap_or(Duration::MAX);
            self.clock.sleep(wait);
            // The sleep repaid the debt; what the clock says beyond it refills from here.
            self.tokens = 0.0;
            self.updated = self.updated.saturating_add(wait);
            self.refill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that moves only when slept on, recording every sleep.
    #[derive(Debug, Default)]
    struct FakeClock {
        now: Duration,
        sleeps: Vec<Duration>,
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            self.now
        }
        fn sleep(&mut self, duration: Duration) {
            self.now += duration;
            self.sleeps.push(duration);
        }
    }

    #[test]
    fn the_waits_add_up_to_the_bytes_beyond_the_burst_over_the_rate() {
        let mut bucket = TokenBucket::with_clock(1_000.0, 500, FakeClock::default());
        for _ in 0..25 {
            bucket.acquire(IoKind::Read, 100);
            bucket.acquire(IoKind::Write, 100);
        }
        // 5000 bytes, 500 of them from the full bucket: 4.5 s of waiting at 1000 B/s.
        let waited: Duration = bucket.clock().sleeps.iter().sum();
        let expected = Duration::from_millis(4_500);
        let slack = Duration::from_micros(1);
        assert!(
            waited + slack >= expected && waited <= expected + slack,
            "{waited:?}"
        );
        assert_eq!(
            bucket.clock().now,
            waited,
            "only the sleeps moved the clock"
        );
    }

    #[test]
    fn time_passing_on_its_own_refills_the_bucket_up_to_the_burst() {
        let mut bucket = TokenBucket::with_clock(1_000.0, 1_000, FakeClock::default());
        bucket.acquire(IoKind::Read, 1_000);
        assert!(bucket.clock().sleeps.is_empty(), "the burst passes at once");
        bucket.clock.now += Duration::from_secs(60);
        bucket.acquire(IoKind::Read, 1_500);
        // A minute refills only up to the burst: 500 bytes wait half a second.
        assert_eq!(bucket.clock().sleeps, vec![Duration::from_millis(500)]);
    }

    #[test]
    fn clones_of_a_shared_throttle_draw_on_one_bucket() {
        let mut first =
            SharedThrottle::new(TokenBucket::with_clock(1_000.0, 0, FakeClock::default()));
        let mut second = first.clone();
        first.acquire(IoKind::Read, 500);
        second.acquire(IoKind::Write, 1_500);
        let waited: Duration = first.0.lock().clock().sleeps.iter().sum();
        assert_eq!(waited, Duration::from_secs(2));
    }

    #[test]
    fn a_rate_that_is_not_positive_never_waits() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut bucket = TokenBucket::with_clock(rate, 0, FakeClock::default());
            bucket.acquire(IoKind::Write, u64::MAX);
            assert!(bucket.clock().sleeps.is_empty());
        }
        Unthrottled.acquire(IoKind::Read, u64::MAX);
    }
}
