//! The rebalance timeline picture (placeholder; being written).

use starling_group::RebalanceRecord;

/// An SVG picture of `records` (one group's history, oldest first) up to `now_ms`.
pub fn timeline_svg(records: &[RebalanceRecord], now_ms: i64) -> String {
    let _ = (records, now_ms);
    String::new()
}
