//! The on-disk layout, version 1: file headers, frames, the record header, index entries.
//!
//! These are versioned wire types, deliberately separate from the API types in the crate root:
//! the API may change freely, this module may only grow new versions next to the old ones
//! (a v1 segment written by the first release must stay readable; see the fixture test).
//!
//! Layout (all integers little-endian):
//!
//! * segment file `log/NNNNNNNNNNNNNNNNNNNN.seg` (named by the global sequence number of its
//!   first record): [`FileHeader`] (`IOBLOG`, version u16, base seq u64), then frames.
//! * frame: `len u32 | crc32c u32 (of body) | body`.
//! * log record body: [`RecordHeaderV1`] (72 bytes) followed by the opaque payload.
//! * partition index `index/pNNN.idx`: [`IndexEntry`] (24 bytes) per partition offset.
//! * sequence index `index/seq.idx`: one u64 (frame position within its segment) per global seq.
//!
//! This module must never do I/O beyond the byte slices it is handed, and never change the
//! meaning of an existing version's bytes.

/// Length of the frame prefix: `len u32 | crc32c u32`.
pub const FRAME_PREFIX: usize = 8;
/// Largest frame body accepted when scanning; anything larger is treated as corruption.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Magic of commit-log segment files.
pub const LOG_MAGIC: [u8; 6] = *b"IOBLOG";
/// Magic of quarantine files.
pub const QUARANTINE_MAGIC: [u8; 6] = *b"IOBQRN";
/// The file format version this build writes (and the only one it reads so far).
pub const FORMAT_VERSION: u16 = 1;
/// Length of [`FileHeader`] on disk.
pub const FILE_HEADER_LEN: usize = 16;

/// The header at the start of every framed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub magic: [u8; 6],
    pub version: u16,
    /// Log segments: the seq of the first record. Quarantine: 0.
    pub base: u64,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[..6].copy_from_slice(&self.magic);
        b[6..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..16].copy_from_slice(&self.base.to_le_bytes());
        b
    }

    /// Decodes a header, `None` if `b` is too short (a torn file creation).
    pub fn decode(b: &[u8]) -> Option<FileHeader> {
        if b.len() < FILE_HEADER_LEN {
            return None;
        }
        Some(FileHeader {
            magic: b[..6].try_into().ok()?,
            version: u16::from_le_bytes(b[6..8].try_into().ok()?),
            base: u64::from_le_bytes(b[8..16].try_into().ok()?),
        })
    }
}

/// Appends one frame holding `body` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// What is at the start of a byte slice that should hold a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole, checksum-valid frame: its body and total length including the prefix.
    Ok { body: &'a [u8], total: usize },
    /// The slice ends before the frame does: need `need` bytes in total.
    Incomplete { need: usize },
    /// Not a valid frame (length out of range or checksum mismatch).
    Bad(&'static str),
}

/// Decodes the frame at the start of `b`. `min_body` is the smallest body a valid frame of
/// this file kind can have.
pub fn decode_frame(b: &[u8], min_body: usize) -> Frame<'_> {
    if b.len() < FRAME_PREFIX {
        return Frame::Incomplete { need: FRAME_PREFIX };
    }
    let len = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
    if len < min_body || len > MAX_BODY {
        return Frame::Bad("frame length out of range");
    }
    let total = FRAME_PREFIX + len;
    if b.len() < total {
        return Frame::Incomplete { need: total };
    }
    let crc = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
    let body = &b[FRAME_PREFIX..total];
    if crc32c::crc32c(body) != crc {
        return Frame::Bad("checksum mismatch");
    }
    Frame::Ok { body, total }
}

/// Version byte of [`RecordHeaderV1`].
pub const RECORD_VERSION_1: u8 = 1;
/// Length of [`RecordHeaderV1`] on disk.
pub const RECORD_HEADER_LEN: usize = 72;

/// The header of one log record, version 1. `dedup_key` all-zero means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeaderV1 {
    pub codec: u8,
    pub kind: u8,
    pub flags: u8,
    pub partition: u32,
    pub offset: u64,
    pub seq: u64,
    pub event_time_ms: i64,
    pub received_ms: i64,
    pub person: [u8; 16],
    pub dedup_key: [u8; 16],
}

/// Where the codec is in an encoded [`RecordHeaderV1`] (after the record version).
const CODEC_AT: usize = 1;

impl RecordHeaderV1 {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RECORD_VERSION_1);
        out.push(self.codec);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.partition.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.event_time_ms.to_le_bytes());
        out.extend_from_slice(&self.received_ms.to_le_bytes());
        out.extend_from_slice(&self.person);
        out.extend_from_slice(&self.dedup_key);
    }

    /// Parses the header at the start of a record body; returns it and the payload.
    pub fn decode(body: &[u8]) -> Result<(RecordHeaderV1, &[u8]), &'static str> {
        if body.len() < RECORD_HEADER_LEN {
            return Err("record shorter than its header");
        }
        if body[0] != RECORD_VERSION_1 {
            return Err("unknown record version");
        }
        let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4"));
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8"));
        let h = RecordHeaderV1 {
            codec: body[CODEC_AT],
            kind: body[2],
            flags: body[3],
            partition: u32_at(4),
            offset: u64_at(8),
            seq: u64_at(16),
            event_time_ms: u64_at(24) as i64,
            received_ms: u64_at(32) as i64,
            person: body[40..56].try_into().expect("16"),
            dedup_key: body[56..72].try_into().expect("16"),
        };
        Ok((h, &body[RECORD_HEADER_LEN..]))
    }
}

/// Appends a whole log frame (prefix, header, payload) to `out` without an intermediate copy.
pub fn encode_record_frame(out: &mut Vec<u8>, h: &RecordHeaderV1, payload: &[u8]) {
    encode_record_frame_with(out, h, payload, |_, _| h.codec);
}

/// [`encode_record_frame`] where `finish` turns the payload into its stored form in place
/// after it is copied (`out[at..]`, which it may lengthen) and returns the codec to record:
/// sealing in the group buffer, without a copy of its own.
pub fn encode_record_frame_with(
    out: &mut Vec<u8>,
    h: &RecordHeaderV1,
    payload: &[u8],
    finish: impl FnOnce(&mut Vec<u8>, usize) -> u8,
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_PREFIX]);
    h.encode_into(out);
    let at = out.len();
    out.extend_from_slice(payload);
    out[start + FRAME_PREFIX + CODEC_AT] = finish(out, at);
    let body = &out[start + FRAME_PREFIX..];
    let len = body.len() as u32;
    let crc = crc32c::crc32c(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Length of [`IndexEntry`] on disk.
pub const INDEX_ENTRY_LEN: usize = 24;

/// Partition index entry `i`: where partition offset `i` lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base seq (= file name) of the segment holding the record.
    pub segment: u64,
    /// Byte position of the frame within the segment.
    pub pos: u64,
    pub event_time_ms: i64,
}

impl IndexEntry {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.extend_from_slice(&self.pos.to_le_bytes());
        out.extend_from_slice(&self.event_time_ms.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> IndexEntry {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
        IndexEntry {
            segment: u64_at(0),
            pos: u64_at(8),
            event_time_ms: u64_at(16) as i64,
        }
    }
}

/// Length of one `seq.idx` entry.
pub const SEQ_ENTRY_LEN: usize = 8;

/// File name of the segment whose first record has `base_seq`.
pub fn segment_file_name(base_seq: u64) -> String {
    format!("{base_seq:020}.seg")
}

/// Parses a segment file name back into its base seq.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// File name of a partition's index.
pub fn index_file_name(partition: u32) -> String {
    format!("p{partition:03}.idx")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RecordHeaderV1 {
        RecordHeaderV1 {
            codec: 1,
            kind: 7,
            flags: 0,
            partition: 3,
            offset: 42,
            seq: 1 << 40,
            event_time_ms: -5,
            received_ms: 1_700_000_000_000,
            person: [9; 16],
            dedup_key: [0; 16],
        }
    }

    #[test]
    fn record_frame_roundtrips() {
        let mut out = vec![1, 2, 3];
        encode_record_frame(&mut out, &header(), b"{\"a\":1}");
        match decode_frame(&out[3..], RECORD_HEADER_LEN) {
            Frame::Ok { body, total } => {
                assert_eq!(total, out.len() - 3);
                let (h, p) = RecordHeaderV1::decode(body).unwrap();
                assert_eq!(h, header());
                assert_eq!(p, b"{\"a\":1}");
            }
            other => panic!("{other:?}"),
        }
        let mut plain = Vec::new();
        let mut body = Vec::new();
        header().encode_into(&mut body);
        body.extend_from_slice(b"{\"a\":1}");
        encode_frame(&mut plain, &body);
        assert_eq!(plain, out[3..]);
    }

    #[test]
    fn bad_frames_are_detected() {
        let mut out = Vec::new();
        encode_record_frame(&mut out, &header(), b"xyz");
        assert!(matches!(
            decode_frame(&out[..out.len() - 1], RECORD_HEADER_LEN),
            Frame::Incomplete { .. }
        ));
        let mut flipped = out.clone();
        flipped[20] ^= 0x40;
        assert_eq!(
            decode_frame(&flipped, RECORD_HEADER_LEN),
            Frame::Bad("checksum mismatch")
        );
        assert!(matches!(
            decode_frame(&[0u8; 100], RECORD_HEADER_LEN),
            Frame::Bad(_)
        ));
    }

    #[test]
    fn names_roundtrip() {
        assert_eq!(segment_file_name(12), "00000000000000000012.seg");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("12.seg"), None);
        assert_eq!(index_file_name(7), "p007.idx");
        let h = FileHeader {
            magic: LOG_MAGIC,
            version: 1,
            base: 77,
        };
        assert_eq!(FileHeader::decode(&h.encode()), Some(h));
        assert_eq!(FileHeader::decode(&h.encode()[..10]), None);
    }
}
