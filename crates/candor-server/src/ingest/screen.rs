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
        let Ok(mut payload) = serde_json::from_slice::<Payload>(&e.payload) else { continue };
        let Payload::ScreenFrame { display, width, height, key, tiles, bytes, reason, data, blob } = &mut payload
        else {
            continue;
        };
        let Some(text) = data.take() else { continue };
        let frame = match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            Ok(f) => f,
            Err(err) => {
                tracing::warn!(agent_id, seq = e.seq, error = %err, "screen frame is not base64; kept without picture");
                *bytes = 0;
                e.payload = payload.to_json();
                continue;
            }
        };
        *bytes = frame.len() as u64;
        match candor_screen::Header::parse(&frame) {
            Ok((h, _)) if (h.width, h.height, h.key, h.carried()) == (*width, *height, *key, *tiles) => {
                let key_hex = blobs.put(&frame)?;
                rows.push(ScreenFrame {
                    agent_id,
                    seq: e.seq,
                    ts_ms: e.ts_ms,
                    display: display.clone(),
                    width: *width,
                    height: *height,
                    key: *key,
                    tiles: *tiles,
                    bytes: *bytes,
                    reason: reason.clone(),
                    blob: key_hex.clone(),
                });
                *blob = Some(key_hex);
            }
            result => {
                let why = result.err().map_or("its header contradicts the event".into(), |e| e.to_string());
                tracing::warn!(agent_id, seq = e.seq, error = %why, "bad screen frame; kept without picture");
            }
        }
        e.payload = payload.to_json();
    }
    Ok(rows)
}
