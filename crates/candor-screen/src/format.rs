//! The stored frame: a fixed header, a bitmap of the tiles it carries, and
//! those tiles as one JPEG mosaic (tiles side by side, 16 to a row). Tiles
//! sit on 64-pixel boundaries, a multiple of JPEG's 16-pixel MCU, so no
//! tile's pixels bleed into another's.
//!
//! ```text
//! 0  "CSF1"
//! 4  width u16 LE, height u16 LE
//! 8  tile size u8 (64), flags u8 (bit 0: key), quality u8, reserved u8
//! 12 tiles carried u32 LE
//! 16 checksum u32 LE: low half of xxh3 over everything after the header
//! 20 bitmap: one bit per tile, row-major, ceil(tiles / 8) bytes
//! .. JPEG mosaic
//! ```
//!
//! Everything is checked before use: a stored frame may be corrupt or forged,
//! and JPEG decoders fill a truncated picture with grey rather than fail, so
//! the checksum is what tells a damaged frame from a picture.

pub const TILE: usize = 64;
pub const MAGIC: &[u8; 4] = b"CSF1";
/// Largest width or height accepted (16K).
pub const MAX_SIDE: u32 = 16_384;
/// Tiles per mosaic row.
pub const MOSAIC_COLS: usize = 16;
pub const HEADER: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("not a screen frame (bad magic or truncated header)")]
    NotAFrame,
    #[error("frame size {0}x{1} is outside 1..={MAX_SIDE}")]
    BadSize(u32, u32),
    #[error("unsupported tile size {0}")]
    BadTile(u8),
    #[error("tile bitmap says {bitmap} tiles but the header says {header}")]
    BadCount { bitmap: u32, header: u32 },
    #[error("checksum mismatch: the frame is corrupt")]
    Checksum,
    #[error("frame carries no tiles")]
    Empty,
    #[error("tile mosaic: {0}")]
    Mosaic(String),
    #[error("a delta frame of {0}x{1} follows no key frame of that size")]
    NoKey(u32, u32),
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Tiles across and down for a picture of this size.
pub fn grid(width: u32, height: u32) -> (usize, usize) {
    ((width as usize).div_ceil(TILE), (height as usize).div_ceil(TILE))
}

/// Pixel size of the mosaic holding `n` tiles.
pub fn mosaic_size(n: usize) -> (usize, usize) {
    (n.min(MOSAIC_COLS) * TILE, n.div_ceil(MOSAIC_COLS) * TILE)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub key: bool,
    pub quality: u8,
    /// Indices (row-major) of the tiles carried, ascending.
    pub tiles: Vec<u32>,
}

impl Header {
    /// Parse and check a frame's header; returns it and the JPEG bytes.
    pub fn parse(frame: &[u8]) -> Result<(Header, &[u8]), FrameError> {
        if frame.len() < HEADER || &frame[..4] != MAGIC {
            return Err(FrameError::NotAFrame);
        }
        let width = u16::from_le_bytes([frame[4], frame[5]]) as u32;
        let height = u16::from_le_bytes([frame[6], frame[7]]) as u32;
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(FrameError::BadSize(width, height));
        }
        if frame[8] as usize != TILE {
            return Err(FrameError::BadTile(frame[8]));
        }
        let key = frame[9] & 1 == 1;
        let quality = frame[10];
        let count = u32::from_le_bytes([frame[12], frame[13], frame[14], frame[15]]);
        let sum = u32::from_le_bytes([frame[16], frame[17], frame[18], frame[19]]);
        let (cols, rows) = grid(width, height);
        let total = cols * rows;
        let bitmap_len = total.div_ceil(8);
        let bitmap = frame.get(HEADER..HEADER + bitmap_len).ok_or(FrameError::NotAFrame)?;
        if checksum(&frame[HEADER..]) != sum {
            return Err(FrameError::Checksum);
        }
        let tiles: Vec<u32> = (0..total).filter(|i| bitmap[i / 8] & (1 << (i % 8)) != 0).map(|i| i as u32).collect();
        if tiles.len() as u32 != count {
            return Err(FrameError::BadCount { bitmap: tiles.len() as u32, header: count });
        }
        if tiles.is_empty() {
            return Err(FrameError::Empty);
        }
        Ok((Header { width, height, key, quality, tiles }, &frame[HEADER + bitmap_len..]))
    }

    /// The whole frame: header, bitmap and `jpeg`.
    pub fn write(&self, jpeg: &[u8]) -> Vec<u8> {
        let (cols, rows) = grid(self.width, self.height);
        let mut out = Vec::with_capacity(HEADER + (cols * rows).div_ceil(8));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.width as u16).to_le_bytes());
        out.extend_from_slice(&(self.height as u16).to_le_bytes());
        out.extend_from_slice(&[TILE as u8, self.key as u8, self.quality, 0]);
        out.extend_from_slice(&(self.tiles.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut bitmap = vec![0u8; (cols * rows).div_ceil(8)];
        for &t in &self.tiles {
            bitmap[t as usize / 8] |= 1 << (t % 8);
        }
        out.extend_from_slice(&bitmap);
        out.extend_from_slice(jpeg);
        let sum = checksum(&out[HEADER..]);
        out[16..20].copy_from_slice(&sum.to_le_bytes());
        out
    }
}

fn checksum(bytes: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(bytes) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejects() {
        let h = Header { width: 1920, height: 1080, key: true, quality: 80, tiles: vec![0, 7, 509] };
        let bytes = h.write(b"jpeg");
        let (back, rest) = Header::parse(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(rest, b"jpeg");
        assert_eq!(Header::parse(&bytes[..20]).unwrap_err(), FrameError::NotAFrame);
        let mut bad = bytes.clone();
        bad[12] = 9;
        assert!(matches!(Header::parse(&bad), Err(FrameError::BadCount { .. })));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(Header::parse(&flipped).unwrap_err(), FrameError::Checksum);
        let mut zero = bytes.clone();
        zero[4] = 0;
        zero[5] = 0;
        assert_eq!(Header::parse(&zero).unwrap_err(), FrameError::BadSize(0, 1080));
    }
}
