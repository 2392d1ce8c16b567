//! The stored frame: a fixed header, which tiles it carries and how, and the
//! tiles whose pixels it sends as one lossy WebP mosaic (tiles side by side,
//! 32 to a row). Tiles sit on 32-pixel boundaries, a multiple of VP8's
//! 16-pixel macroblock, so no tile's pixels bleed into another's.
//!
//! ```text
//! 0  "CSF2"
//! 4  width u16 LE, height u16 LE
//! 8  tile size u8 (32), flags u8 (bit 0: key), quality u8, reserved u8
//! 12 tiles in the mosaic u32 LE
//! 16 checksum u32 LE: low half of xxh3 over everything after the header
//! 20 runs of copied tiles u32 LE
//! 24 runs of reused tiles u32 LE
//! 28 runs of filled tiles u32 LE
//! 32 length of the packed list u32 LE, then the list (bitmap and runs,
//!    below) compressed with zstd: uncompressed it is ~770 bytes a frame at
//!    1080p, mostly zeros, and packed ~200
//!    list: bitmap: one bit per screen tile, row-major, ceil(tiles / 8) bytes
//! .. copy runs: (first tile u32 LE, tiles u16 LE, dy i16 LE) — those tiles
//!    (consecutive, row-major) hold the previous picture's pixels from `dy`
//!    rows above (a scroll); never in key frames
//! .. reuse runs: (first tile u32 LE, first id u32 LE, tiles u16 LE) — those
//!    tiles show tiles sent earlier since the key frame, by id: every mosaic
//!    tile gets the next id in order (a window raised again, a switched tab);
//!    an id must be one of the last [`CACHE`] given before this frame
//! .. fill runs: (first tile u32 LE, tiles u16 LE, r, g, b) — tiles of one
//!    flat colour, kept exact (a lossy codec shifts a flat black by a level,
//!    which SSIM punishes)
//! .. WebP mosaic (absent when no tile is in it)
//! ```
//!
//! Frames of the first format, `"CSF1"` (recorded before WebP was chosen,
//! decision 0015), are still read: the same header, the list stored as is,
//! and a baseline JPEG mosaic.
//!
//! Everything is checked before use: a stored frame may be corrupt or forged,
//! and image decoders fill a truncated picture with grey rather than fail, so
//! the checksum is what tells a damaged frame from a picture.

pub const TILE: usize = 32;
pub const MAGIC: &[u8; 4] = b"CSF2";
/// The first format: JPEG mosaic, list not compressed.
pub const MAGIC_V1: &[u8; 4] = b"CSF1";
/// Largest width or height accepted (16K).
pub const MAX_SIDE: u32 = 16_384;
/// Tiles per mosaic row.
pub const MOSAIC_COLS: usize = 32;
pub const HEADER: usize = 32;
/// Mosaic tiles a decoder keeps for reuse (ids older than this are invalid).
pub const CACHE: u32 = 8192;
/// Most runs of copied tiles in one frame (more than a 16K screen has tiles).
pub const MAX_COPIES: u32 = 1 << 18;
/// Most tiles in one mosaic: WebP pictures are at most 16,383 pixels high.
pub const MAX_MOSAIC_TILES: usize = MOSAIC_COLS * (16_383 / TILE);
/// zstd level of the packed list (small input: the highest costs little).
const LIST_LEVEL: i32 = 19;

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
    #[error("bad copied tile: {0}")]
    BadCopy(String),
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

/// How a frame's mosaic is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mosaic {
    /// `"CSF1"` frames.
    Jpeg,
    Webp,
}

/// Pixel size of the mosaic holding `n` tiles.
pub fn mosaic_size(n: usize) -> (usize, usize) {
    (n.min(MOSAIC_COLS) * TILE, n.div_ceil(MOSAIC_COLS) * TILE)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Set by the magic when parsing; [`Header::write`] always writes WebP.
    pub mosaic: Mosaic,
    pub width: u32,
    pub height: u32,
    pub key: bool,
    pub quality: u8,
    /// Indices (row-major) of the tiles in the mosaic, ascending.
    pub tiles: Vec<u32>,
    /// Tiles copied from the previous picture, `dy` rows higher up: (tile, dy).
    pub copies: Vec<(u32, i16)>,
    /// Tiles showing an earlier mosaic tile again: (tile, id).
    pub reused: Vec<(u32, u32)>,
    /// Tiles of one flat colour: (tile, rgb).
    pub fills: Vec<(u32, [u8; 3])>,
}

impl Header {
    /// Tiles the frame sets, however each is sent.
    pub fn carried(&self) -> u32 {
        (self.tiles.len() + self.copies.len() + self.reused.len() + self.fills.len()) as u32
    }

    /// Parse and check a frame's header; returns it and the mosaic's bytes.
    pub fn parse(frame: &[u8]) -> Result<(Header, &[u8]), FrameError> {
        let mosaic = match frame.get(..4) {
            Some(m) if m == MAGIC && frame.len() >= HEADER + 4 => Mosaic::Webp,
            Some(m) if m == MAGIC_V1 && frame.len() >= HEADER => Mosaic::Jpeg,
            _ => return Err(FrameError::NotAFrame),
        };
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
        let le32 = |i: usize| u32::from_le_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        let (count, sum, copied, reuse_runs, fill_runs) = (le32(12), le32(16), le32(20), le32(24), le32(28));
        if copied > MAX_COPIES || reuse_runs > MAX_COPIES || fill_runs > MAX_COPIES || (key && copied + reuse_runs > 0)
        {
            return Err(FrameError::BadCopy(format!("{copied} copy and {reuse_runs} reuse runs (key frame: {key})")));
        }
        let (cols, rows) = grid(width, height);
        let total = cols * rows;
        let bitmap_len = total.div_ceil(8);
        if checksum(&frame[HEADER..]) != sum {
            return Err(FrameError::Checksum);
        }
        let list_len = bitmap_len + copied as usize * 8 + reuse_runs as usize * 10 + fill_runs as usize * 9;
        let packed;
        let (list, rest): (&[u8], &[u8]) = match mosaic {
            Mosaic::Jpeg => {
                let list = frame.get(HEADER..HEADER + list_len).ok_or(FrameError::NotAFrame)?;
                (list, &frame[HEADER + list_len..])
            }
            Mosaic::Webp => {
                let n = le32(HEADER) as usize;
                let zipped = frame.get(HEADER + 4..(HEADER + 4).saturating_add(n)).ok_or(FrameError::NotAFrame)?;
                // The header's counts fix the size: nothing larger is made.
                packed = zstd::bulk::decompress(zipped, list_len).map_err(|_| FrameError::NotAFrame)?;
                if packed.len() != list_len {
                    return Err(FrameError::NotAFrame);
                }
                (&packed[..], &frame[HEADER + 4 + n..])
            }
        };
        let bitmap = &list[..bitmap_len];
        let tiles: Vec<u32> = (0..total).filter(|i| bitmap[i / 8] & (1 << (i % 8)) != 0).map(|i| i as u32).collect();
        if tiles.len() as u32 != count {
            return Err(FrameError::BadCount { bitmap: tiles.len() as u32, header: count });
        }
        let mut runs = &list[bitmap_len..];
        let mut take = |n: usize| {
            let (head, tail) = runs.split_at(n);
            runs = tail;
            head
        };
        let list = take(copied as usize * 8);
        let mut copies = Vec::new();
        for c in list.chunks_exact(8) {
            let first = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
            let n = u16::from_le_bytes([c[4], c[5]]) as usize;
            let dy = i16::from_le_bytes([c[6], c[7]]);
            if n == 0 || first + n > total || copies.len() + n > total {
                return Err(FrameError::BadCopy(format!("run of {n} tiles from tile {first}")));
            }
            for t in first..first + n {
                let y0 = (t / cols) * TILE;
                let src = y0 as i64 - dy as i64;
                let rows = TILE.min(height as usize - y0) as i64;
                if dy == 0 || src < 0 || src + rows > height as i64 {
                    return Err(FrameError::BadCopy(format!("tile {t} from {dy} rows up")));
                }
                copies.push((t as u32, dy));
            }
        }
        let list = take(reuse_runs as usize * 10);
        let mut reused = Vec::new();
        for c in list.chunks_exact(10) {
            let first = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
            let id = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            let n = u16::from_le_bytes([c[8], c[9]]) as usize;
            if n == 0 || first + n > total || reused.len() + n > total || id.checked_add(n as u32).is_none() {
                return Err(FrameError::BadCopy(format!("reuse of {n} tiles from tile {first}")));
            }
            reused.extend((0..n).map(|i| ((first + i) as u32, id + i as u32)));
        }
        let list = take(fill_runs as usize * 9);
        let mut fills = Vec::new();
        for c in list.chunks_exact(9) {
            let first = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
            let n = u16::from_le_bytes([c[4], c[5]]) as usize;
            if n == 0 || first + n > total || fills.len() + n > total {
                return Err(FrameError::BadCopy(format!("fill of {n} tiles from tile {first}")));
            }
            fills.extend((first..first + n).map(|t| (t as u32, [c[6], c[7], c[8]])));
        }
        if tiles.is_empty() && copies.is_empty() && reused.is_empty() && fills.is_empty() {
            return Err(FrameError::Empty);
        }
        Ok((Header { mosaic, width, height, key, quality, tiles, copies, reused, fills }, rest))
    }

    /// The whole frame (`"CSF2"`): header, packed list and the WebP `mosaic`.
    pub fn write(&self, mosaic: &[u8]) -> Result<Vec<u8>, FrameError> {
        let (cols, rows) = grid(self.width, self.height);
        let mut out = Vec::with_capacity(HEADER + 4 + mosaic.len() + 256);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.width as u16).to_le_bytes());
        out.extend_from_slice(&(self.height as u16).to_le_bytes());
        out.extend_from_slice(&[TILE as u8, self.key as u8, self.quality, 0]);
        out.extend_from_slice(&(self.tiles.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let runs = runs(&self.copies);
        let reuse = reuse_runs(&self.reused);
        let fill = fill_runs(&self.fills);
        out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
        out.extend_from_slice(&(reuse.len() as u32).to_le_bytes());
        out.extend_from_slice(&(fill.len() as u32).to_le_bytes());
        let mut list = vec![0u8; (cols * rows).div_ceil(8)];
        for &t in &self.tiles {
            list[t as usize / 8] |= 1 << (t % 8);
        }
        for (t, n, dy) in runs {
            list.extend_from_slice(&t.to_le_bytes());
            list.extend_from_slice(&n.to_le_bytes());
            list.extend_from_slice(&dy.to_le_bytes());
        }
        for (t, id, n) in reuse {
            list.extend_from_slice(&t.to_le_bytes());
            list.extend_from_slice(&id.to_le_bytes());
            list.extend_from_slice(&n.to_le_bytes());
        }
        for (t, n, rgb) in fill {
            list.extend_from_slice(&t.to_le_bytes());
            list.extend_from_slice(&n.to_le_bytes());
            list.extend_from_slice(&rgb);
        }
        let packed =
            zstd::bulk::compress(&list, LIST_LEVEL).map_err(|e| FrameError::Encode(format!("tile list: {e}")))?;
        out.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        out.extend_from_slice(&packed);
        out.extend_from_slice(mosaic);
        let sum = checksum(&out[HEADER..]);
        out[16..20].copy_from_slice(&sum.to_le_bytes());
        Ok(out)
    }
}

/// Recompute a frame's checksum after editing it (tests and fuzzing reach
/// the parser's later checks this way).
pub fn reseal(frame: &mut [u8]) {
    if frame.len() >= HEADER {
        let sum = checksum(&frame[HEADER..]);
        frame[16..20].copy_from_slice(&sum.to_le_bytes());
    }
}

/// Consecutive tiles moved by the same distance, as (first, count, dy).
fn runs(copies: &[(u32, i16)]) -> Vec<(u32, u16, i16)> {
    let mut out: Vec<(u32, u16, i16)> = Vec::new();
    for &(t, dy) in copies {
        match out.last_mut() {
            Some((first, n, d)) if *d == dy && *first + u32::from(*n) == t && *n < u16::MAX => *n += 1,
            _ => out.push((t, 1, dy)),
        }
    }
    out
}

/// Consecutive tiles showing consecutive ids, as (first tile, first id, count).
fn reuse_runs(reused: &[(u32, u32)]) -> Vec<(u32, u32, u16)> {
    let mut out: Vec<(u32, u32, u16)> = Vec::new();
    for &(t, id) in reused {
        match out.last_mut() {
            Some((first, fid, n)) if *first + u32::from(*n) == t && *fid + u32::from(*n) == id && *n < u16::MAX => {
                *n += 1
            }
            _ => out.push((t, id, 1)),
        }
    }
    out
}

/// Consecutive tiles of the same colour, as (first tile, count, rgb).
fn fill_runs(fills: &[(u32, [u8; 3])]) -> Vec<(u32, u16, [u8; 3])> {
    let mut out: Vec<(u32, u16, [u8; 3])> = Vec::new();
    for &(t, rgb) in fills {
        match out.last_mut() {
            Some((first, n, c)) if *c == rgb && *first + u32::from(*n) == t && *n < u16::MAX => *n += 1,
            _ => out.push((t, 1, rgb)),
        }
    }
    out
}

fn checksum(bytes: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(bytes) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejects() {
        let h = Header {
            mosaic: Mosaic::Webp,
            width: 1920,
            height: 1080,
            key: false,
            quality: 80,
            tiles: vec![0, 7, 509],
            copies: vec![(120, 64), (121, 64), (125, 32)],
            reused: vec![(200, 5), (201, 6), (300, 2)],
            fills: vec![(400, [0, 0, 0]), (401, [0, 0, 0]), (402, [9, 9, 9])],
        };
        let bytes = h.write(b"webp").unwrap();
        assert!(bytes.len() < 100, "the list is packed: {} bytes", bytes.len());
        let (back, rest) = Header::parse(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(rest, b"webp");
        assert_eq!(Header::parse(&bytes[..32]).unwrap_err(), FrameError::NotAFrame);
        let up = Header { copies: vec![(0, 64)], ..h.clone() }.write(b"").unwrap();
        assert!(matches!(Header::parse(&up), Err(FrameError::BadCopy(_))), "a copy from above the top");
        let mut bad = bytes.clone();
        bad[12] = 9;
        assert!(matches!(Header::parse(&bad), Err(FrameError::BadCount { .. })));
        // A list that unpacks to another size than the counts say.
        let mut bad = bytes.clone();
        bad[20] += 1;
        assert_eq!(Header::parse(&bad).unwrap_err(), FrameError::NotAFrame);
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(Header::parse(&flipped).unwrap_err(), FrameError::Checksum);
        let mut zero = bytes.clone();
        zero[4] = 0;
        zero[5] = 0;
        assert_eq!(Header::parse(&zero).unwrap_err(), FrameError::BadSize(0, 1080));
    }
}
