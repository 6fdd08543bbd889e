//! Segment files on disk: a partition directory's `.log` files ([`log_files`]), the record
//! batches in one ([`parse_batches`]) and their checksums ([`batch_crc_ok`]).

use std::path::{Path, PathBuf};

/// The `.log` files of a partition directory, sorted by base offset (their names).
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|x| x == "log").unwrap_or(false))
        .collect();
    files.sort();
    files
}

/// A v2 record batch found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPos {
    /// Byte position of the batch in the file.
    pub pos: usize,
    /// Whole batch size including the 12-byte offset+length prefix.
    pub len: usize,
    pub base_offset: i64,
    pub records: i32,
    pub attributes: i16,
}

/// Walks the record batches of a well-formed segment file.
pub fn parse_batches(data: &[u8]) -> Vec<BatchPos> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 61 <= data.len() {
        let base_offset = i64::from_be_bytes(data[pos..pos + 8].try_into().unwrap());
        let batch_len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        assert!(
            batch_len >= 49,
            "implausible batch length {batch_len} at {pos}"
        );
        let len = 12 + batch_len as usize;
        assert!(
            pos + len <= data.len(),
            "batch at {pos} runs past the end of the file"
        );
        let attributes = i16::from_be_bytes(data[pos + 21..pos + 23].try_into().unwrap());
        let records = i32::from_be_bytes(data[pos + 57..pos + 61].try_into().unwrap());
        out.push(BatchPos {
            pos,
            len,
            base_offset,
            records,
            attributes,
        });
        pos += len;
    }
    assert_eq!(pos, data.len(), "trailing bytes after the last batch");
    out
}

/// CRC-32C of a batch as stored in its header matches its contents.
pub fn batch_crc_ok(batch: &[u8]) -> bool {
    let stored = u32::from_be_bytes(batch[17..21].try_into().unwrap());
    crc32c::crc32c(&batch[21..]) == stored
}
