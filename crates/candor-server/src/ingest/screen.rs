//! Screen frames at ingest: each frame's bytes move from the event to the
//! blob store (content-addressed, so a resent batch writes nothing new) and
//! the event keeps only the blob's key; the frame joins the time index.
//!
//! Frames are checked (header, size, checksum) before they are kept: a frame
//! that fails is kept as an event without a picture and logged, so the
//! batch — and everything else in it — still lands.

use crate::store::blob::BlobStore;
use crate::store::ScreenFrame;
use base64::Engine as _;
use candor_proto::{Category, Event, Payload};

/// Move frames into `blobs`; returns the index rows of those that are sound.
pub fn store_frames(blobs: &dyn BlobStore, agent_id: u64, events: &mut [Event]) -> std::io::Result<Vec<ScreenFrame>> {
    let mut rows = Vec::new();
    for e in events.iter_mut().filter(|e| e.category == Category::Screen) {
        let Ok(Payload::ScreenFrame { display, width, height, key, tiles, reason, data: Some(data), .. }) =
            serde_json::from_slice::<Payload>(&e.payload)
        else {
            continue;
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) {
            Ok(b) => b,
            Err(err) => {
                tracing::warn!(agent_id, seq = e.seq, error = %err, "screen frame is not base64; kept without picture");
                strip(e, display, width, height, key, tiles, 0, reason, None);
                continue;
            }
        };
        match candor_screen::Header::parse(&bytes) {
            Ok((h, _)) if (h.width, h.height, h.key, h.carried()) == (width, height, key, tiles) => {
                let blob = blobs.put(&bytes)?;
                rows.push(ScreenFrame {
                    agent_id,
                    seq: e.seq,
                    ts_ms: e.ts_ms,
                    display: display.clone(),
                    width,
                    height,
                    key,
                    tiles,
                    bytes: bytes.len() as u64,
                    reason: reason.clone(),
                    blob: blob.clone(),
                });
                strip(e, display, width, height, key, tiles, bytes.len() as u64, reason, Some(blob));
            }
            result => {
                let why = result.err().map_or("its header contradicts the event".into(), |e| e.to_string());
                tracing::warn!(agent_id, seq = e.seq, error = %why, "bad screen frame; kept without picture");
                strip(e, display, width, height, key, tiles, bytes.len() as u64, reason, None);
            }
        }
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn strip(
    e: &mut Event,
    display: String,
    width: u32,
    height: u32,
    key: bool,
    tiles: u32,
    bytes: u64,
    reason: String,
    blob: Option<String>,
) {
    e.payload = Payload::ScreenFrame { display, width, height, key, tiles, bytes, reason, data: None, blob }.to_json();
}
