//! Member id generation: `<client_id>-<uuid-like>` for dynamic members and
//! `<group_instance_id>-<uuid-like>` for static ones, as Kafka does. The suffix is built from
//! the clock and a counter instead of randomness, so ids are reproducible in tests; the clock
//! part keeps ids unique across restarts (the counter starts again at 0), and the caller
//! skips any id a group already knows.

use crate::Millis;

/// The uuid-shaped suffix for the `counter`-th id generated at `now`.
pub(crate) fn uuid_like(now: Millis, counter: u64) -> String {
    let time = now as u64;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (time >> 16) & 0xffff_ffff,
        time & 0xffff,
        (counter >> 48) & 0xffff,
        (counter >> 32) & 0xffff,
        counter & 0xffff_ffff_ffff
    )
}

/// A member id: `prefix-uuid_like`.
pub(crate) fn member_id(prefix: &str, now: Millis, counter: u64) -> String {
    format!("{prefix}-{}", uuid_like(now, counter))
}
