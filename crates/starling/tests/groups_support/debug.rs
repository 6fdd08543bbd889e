//! `STARLING_GROUP_TEST_DEBUG`: whether members log librdkafka's group debug output
//! ([`debug_enabled`]), and the timestamps that output is tagged with ([`stamp`]).

/// True when `STARLING_GROUP_TEST_DEBUG` is set: members then log librdkafka's
/// `cgrp,protocol` debug output to stderr.
pub fn debug_enabled() -> bool {
    std::env::var_os("STARLING_GROUP_TEST_DEBUG").is_some()
}

/// Seconds (mod 1000) and milliseconds of the wall clock, to line up debug output.
pub fn stamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:03}", d.as_secs() % 1000, d.subsec_millis())
}
