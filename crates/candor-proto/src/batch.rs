//! The ingest batch codec.
//!
//! Layout: `b"CNDB"`, a little-endian `u16` format version, then one zstd frame
//! holding the postcard encoding of [`Batch`]. Postcard keeps the envelope
//! small and decodes at memory speed; zstd shrinks the repetitive JSON payloads
//! about tenfold. Every size is bounded before memory is committed to it, so a
//! hostile body costs the server at most [`Limits`].

use crate::event::{Event, Payload};
use serde::{Deserialize, Serialize};
use std::io::Read;

pub const MAGIC: &[u8; 4] = b"CNDB";
/// The version this build writes.
pub const VERSION: u16 = 1;
/// The oldest version this build still reads.
pub const MIN_VERSION: u16 = 1;
pub const CONTENT_TYPE: &str = "application/x-candor-batch";

/// Events from one agent, in increasing `seq` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub agent_id: u64,
    /// Every seq below `floor` was acknowledged earlier or dropped by the spool
    /// (and reported in a `spool_dropped` event); the server may count them as
    /// accounted for when it computes the contiguous acknowledgement.
    pub floor: u64,
    pub events: Vec<Event>,
}

/// Bounds applied while decoding untrusted input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_compressed: usize,
    pub max_decompressed: usize,
    pub max_events: usize,
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_compressed: 16 << 20, max_decompressed: 64 << 20, max_events: 100_000, max_payload: 256 << 10 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("batch is {0} bytes, more than the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("not a Candor batch (bad magic)")]
    BadMagic,
    #[error("unsupported batch version {0} (this server accepts {MIN_VERSION}..={VERSION})")]
    Version(u16),
    #[error("batch decompresses to more than {0} bytes")]
    DecompressedTooLarge(usize),
    #[error("batch is not valid zstd: {0}")]
    Compression(String),
    #[error("batch body is malformed: {0}")]
    Malformed(String),
    #[error("batch holds {0} events, more than the limit of {1}")]
    TooManyEvents(usize, usize),
    #[error("event {index} (seq {seq}): {reason}")]
    BadEvent { index: usize, seq: u64, reason: String },
}

/// Encode a batch for the wire. `level` is the zstd level (1–3 is right for
/// agents: cheap and already about 10× on event JSON).
pub fn encode(batch: &Batch, level: i32) -> Vec<u8> {
    let body = postcard::to_stdvec(batch).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() / 4 + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    match zstd::stream::encode_all(&body[..], level) {
        Ok(z) => out.extend_from_slice(&z),
        Err(_) => out.clear(),
    }
    out
}

/// Decode and structurally validate a batch: sizes, version, strictly
/// increasing seqs, and payloads that parse as [`Payload`] under the right
/// category. The caller still checks who may send it.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Batch, BatchError> {
    if bytes.len() > limits.max_compressed {
        return Err(BatchError::TooLarge(bytes.len(), limits.max_compressed));
    }
    if bytes.len() < 6 || &bytes[..4] != MAGIC {
        return Err(BatchError::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(BatchError::Version(version));
    }
    let decoder = zstd::stream::Decoder::new(&bytes[6..]).map_err(|e| BatchError::Compression(e.to_string()))?;
    let mut body = Vec::new();
    decoder
        .take(limits.max_decompressed as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| BatchError::Compression(e.to_string()))?;
    if body.len() > limits.max_decompressed {
        return Err(BatchError::DecompressedTooLarge(limits.max_decompressed));
    }
    // Length prefixes are untrusted; serde caps its pre-allocation
    // (`size_hint::cautious`), so a huge claimed count fails at end of input.
    let batch: Batch = postcard::from_bytes(&body).map_err(|e| BatchError::Malformed(e.to_string()))?;
    if batch.events.len() > limits.max_events {
        return Err(BatchError::TooManyEvents(batch.events.len(), limits.max_events));
    }
    validate_events(&batch.events, limits)?;
    Ok(batch)
}

fn validate_events(events: &[Event], limits: &Limits) -> Result<(), BatchError> {
    let mut prev = 0u64;
    for (index, e) in events.iter().enumerate() {
        let bad = |reason: String| BatchError::BadEvent { index, seq: e.seq, reason };
        if e.seq == 0 || e.seq <= prev {
            return Err(bad("seqs must start at 1 and strictly increase".into()));
        }
        prev = e.seq;
        if e.payload.len() > limits.max_payload {
            return Err(bad(format!("payload is {} bytes, more than {}", e.payload.len(), limits.max_payload)));
        }
        let payload: Payload =
            serde_json::from_slice(&e.payload).map_err(|err| bad(format!("invalid payload: {err}")))?;
        if let Some(required) = payload.required_category() {
            if required != e.category {
                return Err(bad(format!("payload belongs to category {required}, not {}", e.category)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Category;

    fn sample(n: u64) -> Batch {
        Batch {
            agent_id: 7,
            floor: 1,
            events: (1..=n)
                .map(|i| Event {
                    seq: i,
                    ts_ms: 1_700_000_000_000 + i as i64,
                    duration_ms: None,
                    category: Category::Activity,
                    payload: Payload::Synthetic { n: i, note: None }.to_json(),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip() {
        let b = sample(100);
        assert_eq!(decode(&encode(&b, 1), &Limits::default()).unwrap(), b);
    }

    #[test]
    fn rejects_bad_version_magic_truncation_and_size() {
        let mut bytes = encode(&sample(10), 1);
        let lim = Limits::default();
        let mut v = bytes.clone();
        v[4] = 99;
        assert_eq!(decode(&v, &lim), Err(BatchError::Version(99)));
        assert_eq!(decode(b"nope", &lim), Err(BatchError::BadMagic));
        let n = bytes.len();
        assert!(matches!(decode(&bytes[..n - 5], &lim), Err(BatchError::Compression(_) | BatchError::Malformed(_))));
        let small = Limits { max_compressed: 10, ..lim };
        assert!(matches!(decode(&bytes, &small), Err(BatchError::TooLarge(..))));
        let tiny = Limits { max_decompressed: 50, ..lim };
        assert!(matches!(decode(&bytes, &tiny), Err(BatchError::DecompressedTooLarge(_))));
        bytes.truncate(6);
        assert!(decode(&bytes, &lim).is_err());
    }

    #[test]
    fn rejects_unordered_seqs_and_wrong_category() {
        let mut b = sample(3);
        b.events[2].seq = 2;
        assert!(matches!(decode(&encode(&b, 1), &Limits::default()), Err(BatchError::BadEvent { index: 2, .. })));
        let mut b = sample(1);
        b.events[0].payload = Payload::AgentStarted { version: "x".into() }.to_json();
        assert!(matches!(decode(&encode(&b, 1), &Limits::default()), Err(BatchError::BadEvent { .. })));
        let mut b = sample(1);
        b.events[0].payload = b"{not json".to_vec();
        assert!(matches!(decode(&encode(&b, 1), &Limits::default()), Err(BatchError::BadEvent { .. })));
    }

    #[test]
    fn hostile_length_prefix_does_not_allocate() {
        // A body claiming 2^60 events must fail fast, not abort on allocation.
        let mut body = vec![7u8, 1];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&zstd::stream::encode_all(&body[..], 1).unwrap());
        assert!(matches!(decode(&bytes, &Limits::default()), Err(BatchError::Malformed(_))));
    }
}
