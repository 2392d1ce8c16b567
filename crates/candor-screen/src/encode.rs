//! Encoding captures: find the tiles that changed since the previous
//! capture, JPEG them as a mosaic, and decide when a key frame is due.

use crate::format::{grid, mosaic_size, FrameError, Header, MOSAIC_COLS, TILE};
use crate::Image;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// JPEG quality, 1–100.
    pub quality: u8,
    /// A key frame at least every this many frames: the most deltas
    /// showing any instant has to decode.
    pub key_every: u32,
    /// Frames larger than this are split into parts (same instant, disjoint
    /// tiles), so one record stays under the transport's payload bound.
    pub max_part_bytes: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions { quality: 70, key_every: 360, max_part_bytes: 160 << 10 }
    }
}

/// One stored record of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub key: bool,
    /// Tiles this part carries.
    pub tiles: u32,
}

/// Per-display encoder state: the previous capture's tile hashes.
pub struct Encoder {
    options: EncoderOptions,
    size: (u32, u32),
    hashes: Vec<u64>,
    since_key: u32,
    /// Bytes of deltas since the last key frame, and of that key frame:
    /// once replaying deltas costs more than a fresh key, one is due.
    delta_bytes: usize,
    key_bytes: usize,
}

fn tile_hash(img: &Image, t: usize, cols: usize) -> u64 {
    let (x0, y0) = ((t % cols) * TILE, (t / cols) * TILE);
    let (w, h) = (img.width as usize, img.height as usize);
    let x1 = (x0 + TILE).min(w);
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for y in y0..(y0 + TILE).min(h) {
        hasher.update(&img.rgb[(y * w + x0) * 3..(y * w + x1) * 3]);
    }
    hasher.digest()
}

/// Copy tile `t` of `img` into slot `slot` of the mosaic, repeating the last
/// column and row into the padding of edge tiles (cheaper to encode than black).
fn place(img: &Image, cols: usize, t: usize, mosaic: &mut [u8], mosaic_w: usize, slot: usize) {
    let (w, h) = (img.width as usize, img.height as usize);
    let (x0, y0) = ((t % cols) * TILE, (t / cols) * TILE);
    let (mx, my) = ((slot % MOSAIC_COLS) * TILE, (slot / MOSAIC_COLS) * TILE);
    let tw = (w - x0).min(TILE);
    for dy in 0..TILE {
        let sy = (y0 + dy).min(h - 1);
        let src = &img.rgb[(sy * w + x0) * 3..(sy * w + x0 + tw) * 3];
        let row = (my + dy) * mosaic_w + mx;
        mosaic[row * 3..(row + tw) * 3].copy_from_slice(src);
        let last = [src[(tw - 1) * 3], src[(tw - 1) * 3 + 1], src[(tw - 1) * 3 + 2]];
        for dx in tw..TILE {
            mosaic[(row + dx) * 3..(row + dx + 1) * 3].copy_from_slice(&last);
        }
    }
}

/// Encode the given tiles of `img` as one frame.
pub fn encode_tiles(img: &Image, tiles: &[u32], key: bool, quality: u8) -> Result<Vec<u8>, FrameError> {
    let (cols, _) = img.grid();
    let (mw, mh) = mosaic_size(tiles.len());
    let mut mosaic = vec![0u8; mw * mh * 3];
    for (slot, &t) in tiles.iter().enumerate() {
        place(img, cols, t as usize, &mut mosaic, mw, slot);
    }
    let header = Header { width: img.width, height: img.height, key, quality, tiles: tiles.to_vec() };
    let mut jpeg = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, quality.clamp(1, 100));
    // 4:2:0 halves the bytes of text-heavy screens for a small luma cost;
    // the quality gate is measured on luma (docs/decisions/0015).
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    enc.encode(&mosaic, mw as u16, mh as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    Ok(header.write(&jpeg))
}

impl Encoder {
    pub fn new(options: EncoderOptions) -> Encoder {
        Encoder { options, size: (0, 0), hashes: Vec::new(), since_key: 0, delta_bytes: 0, key_bytes: 0 }
    }

    /// Forget the previous capture: the next frame is a key frame.
    pub fn reset(&mut self) {
        self.size = (0, 0);
        self.hashes.clear();
    }

    /// Encode a capture; no parts when nothing changed since the last one.
    pub fn encode(&mut self, img: &Image) -> Result<Vec<Part>, FrameError> {
        let (w, h) = (img.width, img.height);
        if !(1..=crate::format::MAX_SIDE).contains(&w)
            || !(1..=crate::format::MAX_SIDE).contains(&h)
            || img.rgb.len() != w as usize * h as usize * 3
        {
            return Err(FrameError::BadSize(w, h));
        }
        let (cols, rows) = grid(w, h);
        let hashes: Vec<u64> = (0..cols * rows).map(|t| tile_hash(img, t, cols)).collect();
        let key = self.size != (w, h)
            || self.since_key + 1 >= self.options.key_every
            || self.delta_bytes > self.key_bytes.max(1);
        let changed: Vec<u32> = if key {
            (0..hashes.len() as u32).collect()
        } else {
            (0..hashes.len()).filter(|&t| hashes[t] != self.hashes[t]).map(|t| t as u32).collect()
        };
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let mut parts = Vec::new();
        self.split(img, &changed, key, &mut parts)?;
        // State moves only once the whole frame encoded: a failed encode
        // leaves the next capture to carry these changes.
        let bytes: usize = parts.iter().map(|p| p.bytes.len()).sum();
        if key {
            self.since_key = 0;
            self.delta_bytes = 0;
            self.key_bytes = bytes;
        } else {
            self.since_key += 1;
            self.delta_bytes += bytes;
        }
        self.size = (w, h);
        self.hashes = hashes;
        Ok(parts)
    }

    fn split(&self, img: &Image, tiles: &[u32], key: bool, out: &mut Vec<Part>) -> Result<(), FrameError> {
        let bytes = encode_tiles(img, tiles, key, self.options.quality)?;
        if bytes.len() <= self.options.max_part_bytes || tiles.len() == 1 {
            out.push(Part { bytes, key, tiles: tiles.len() as u32 });
            return Ok(());
        }
        let (a, b) = tiles.split_at(tiles.len() / 2);
        self.split(img, a, key, out)?;
        self.split(img, b, false, out)
    }
}
