//! Sparse per-segment indexes, kept in memory and persisted beside the segment.
//!
//! * `.index`: entries of `relative offset: u32, position: u32` (big-endian),
//!   one for the first batch after every `index.interval.bytes` of log data.
//!   The relative offset is the batch's *base* offset minus the segment's base,
//!   so a floor lookup lands on a batch that starts at or before the target.
//! * `.timeindex`: entries of `timestamp: i64, relative offset: u32`, written
//!   alongside offset entries, holding the largest `maxTimestamp` seen so far
//!   and the last offset of the batch that carried it. Timestamps strictly
//!   increase between entries; sealing a segment adds a final entry so the
//!   last one is always the segment's largest timestamp.
//!
//! The in-memory copy is authoritative while the broker runs; files are
//! rewritten whole when a segment is sealed, at close and after recovery.
//! On open, files of trusted sealed segments are loaded and checked here; any
//! inconsistency makes the caller rebuild them by scanning the segment.

/// Bytes per `.index` entry.
pub(crate) const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes per `.timeindex` entry.
pub(crate) const TIME_ENTRY_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub rel: u32,
    pub pos: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub ts: i64,
    pub rel: u32,
}

/// Both indexes of one segment plus the running state needed to extend them.
#[derive(Debug, Clone)]
pub(crate) struct SegmentIndex {
    base_offset: i64,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    bytes_since_entry: u64,
    /// Largest `maxTimestamp` in the segment and the last offset of its batch
    /// (the first such batch on ties).
    max_ts: Option<(i64, i64)>,
}

impl SegmentIndex {
    pub fn new(base_offset: i64) -> SegmentIndex {
        SegmentIndex {
            base_offset,
            offsets: Vec::new(),
            times: Vec::new(),
            bytes_since_entry: 0,
            max_ts: None,
        }
    }

    fn rel(&self, offset: i64) -> u32 {
        // Rolling keeps every offset of a segment within u32 of its base.
        u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX)
    }

    /// Accounts for one batch written at `pos`.
    pub fn on_batch(
        &mut self,
        pos: u32,
        base: i64,
        last: i64,
        max_timestamp: i64,
        size: u64,
        interval: u32,
    ) {
        if self.max_ts.is_none_or(|(ts, _)| max_timestamp > ts) {
            self.max_ts = Some((max_timestamp, last));
        }
        if pos > 0 && self.bytes_since_entry >= u64::from(interval) {
            let rel = self.rel(base);
            if self
                .offsets
                .last()
                .is_none_or(|e| e.rel < rel && e.pos < pos)
            {
                self.offsets.push(OffsetEntry { rel, pos });
            }
            self.maybe_time_entry();
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry = self.bytes_since_entry.saturating_add(size);
    }

    fn maybe_time_entry(&mut self) {
        if let Some((ts, offset)) = self.max_ts {
            let rel = self.rel(offset);
            if self.times.last().is_none_or(|e| ts > e.ts && rel >= e.rel) {
                self.times.push(TimeEntry { ts, rel });
            }
        }
    }

    /// Called when the segment stops being active: make the last time entry
    /// the segment's largest timestamp.
    pub fn seal(&mut self) {
        self.maybe_time_entry();
    }

    /// `(largest maxTimestamp, last offset of that batch)`.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.max_ts
    }

    /// File position of the last indexed batch starting at or before `offset` (0 if none).
    pub fn floor_position(&self, offset: i64) -> u32 {
        if offset <= self.base_offset {
            return 0;
        }
        let rel = self.rel(offset);
        let n = self.offsets.partition_point(|e| e.rel <= rel);
        if n == 0 {
            0
        } else {
            self.offsets[n - 1].pos
        }
    }

    /// Where a search for the first batch with `maxTimestamp >= target` may
    /// start: every batch before the returned position has a smaller
    /// `maxTimestamp`.
    pub fn time_search_position(&self, target: i64) -> u32 {
        let n = self.times.partition_point(|e| e.ts < target);
        if n == 0 {
            return 0;
        }
        let entry = self.times[n - 1];
        self.floor_position(self.base_offset.saturating_add(i64::from(entry.rel)))
    }

    pub fn offset_entries(&self) -> &[OffsetEntry] {
        &self.offsets
    }

    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_LEN);
        for e in &self.offsets {
            out.extend_from_slice(&e.rel.to_be_bytes());
            out.extend_from_slice(&e.pos.to_be_bytes());
        }
        out
    }

    pub fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_LEN);
        for e in &self.times {
            out.extend_from_slice(&e.ts.to_be_bytes());
            out.extend_from_slice(&e.rel.to_be_bytes());
        }
        out
    }

    /// Loads the index files of a sealed segment holding offsets
    /// `base_offset..next_offset` in `size` bytes, checking that they are
    /// well-formed and consistent with it. `Err` names the problem; the caller
    /// then rebuilds by scanning.
    pub fn load(
        base_offset: i64,
        next_offset: i64,
        size: u64,
        offset_bytes: &[u8],
        time_bytes: &[u8],
    ) -> Result<SegmentIndex, String> {
        let span = next_offset.saturating_sub(base_offset);
        if offset_bytes.len() % OFFSET_ENTRY_LEN != 0 {
            return Err(format!(
                "offset index length {} is not a multiple of {OFFSET_ENTRY_LEN}",
                offset_bytes.len()
            ));
        }
        if time_bytes.len() % TIME_ENTRY_LEN != 0 {
            return Err(format!(
                "time index length {} is not a multiple of {TIME_ENTRY_LEN}",
                time_bytes.len()
            ));
        }
        let mut offsets: Vec<OffsetEntry> =
            Vec::with_capacity(offset_bytes.len() / OFFSET_ENTRY_LEN);
        for chunk in offset_bytes.chunks_exact(OFFSET_ENTRY_LEN) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if i64::from(rel) >= span || u64::from(pos) >= size {
                return Err(format!(
                    "offset index entry ({rel}, {pos}) lies outside the segment"
                ));
            }
            if let Some(prev) = offsets.last() {
                if rel <= prev.rel || pos <= prev.pos {
                    return Err(format!(
                        "offset index entry ({rel}, {pos}) does not increase"
                    ));
                }
            }
            offsets.push(OffsetEntry { rel, pos });
        }
        let mut times: Vec<TimeEntry> = Vec::with_capacity(time_bytes.len() / TIME_ENTRY_LEN);
        for chunk in time_bytes.chunks_exact(TIME_ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if i64::from(rel) >= span {
                return Err(format!(
                    "time index entry ({ts}, {rel}) lies outside the segment"
                ));
            }
            if let Some(prev) = times.last() {
                if ts <= prev.ts || rel < prev.rel {
                    return Err(format!("time index entry ({ts}, {rel}) does not increase"));
                }
            }
            times.push(TimeEntry { ts, rel });
        }
        if size > 0 && times.is_empty() {
            return Err("time index of a non-empty sealed segment is empty".to_string());
        }
        let max_ts = times
            .last()
            .map(|e| (e.ts, base_offset.saturating_add(i64::from(e.rel))));
        Ok(SegmentIndex {
            base_offset,
            offsets,
            times,
            bytes_since_entry: 0,
            max_ts,
        })
    }
}
