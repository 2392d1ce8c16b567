//! Encoding captures: find the tiles that changed since the previous
//! capture, recognise those that merely moved up or down (scrolling, a
//! terminal's new line) and send them as copies, those that show a tile
//! sent earlier (a window raised again) as reuses, code the rest as one
//! lossy WebP mosaic, and decide when a key frame is due.

use crate::format::{grid, mosaic_size, FrameError, Header, Mosaic, CACHE, MAX_MOSAIC_TILES, MOSAIC_COLS, TILE};
use crate::Image;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// WebP quality, 0–100 (libwebp's scale; decision 0015 measures it).
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
        EncoderOptions { quality: DEFAULT_QUALITY, key_every: 360, max_part_bytes: 160 << 10 }
    }
}

/// One stored record of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub key: bool,
    /// Tiles this part carries (encoded or copied).
    pub tiles: u32,
}

/// The WebP quality recordings use unless a policy says otherwise.
pub const DEFAULT_QUALITY: u8 = 10;

/// A new key frame once the deltas since the last one hold this many times
/// its bytes: showing an instant never decodes much more than that.
const DELTA_BUDGET: usize = 16;
/// Row matches a displacement needs before tiles are tried against it.
const MIN_VOTES: u32 = 32;
/// Displacements tried per frame.
const MAX_CANDIDATES: usize = 4;

/// Per-display encoder state: the previous capture and its hashes.
pub struct Encoder {
    options: EncoderOptions,
    prev: Option<Prev>,
    since_key: u32,
    delta_bytes: usize,
    key_bytes: usize,
    /// Raw tile hash → id of the mosaic tile that showed it, since the key frame.
    cache: HashMap<u64, u32>,
    next_id: u32,
}

struct Prev {
    size: (u32, u32),
    tiles: Vec<u64>,
    /// Hash of each row of each tile-wide column strip: `rows[col][y]`.
    rows: Vec<Vec<u64>>,
}

fn row_hashes(img: &Image, cols: usize) -> Vec<Vec<u64>> {
    let (w, h) = (img.width as usize, img.height as usize);
    (0..cols)
        .map(|c| {
            let (x0, x1) = (c * TILE, ((c + 1) * TILE).min(w));
            (0..h).map(|y| xxhash_rust::xxh3::xxh3_64(&img.rgb[(y * w + x0) * 3..(y * w + x1) * 3])).collect()
        })
        .collect()
}

/// Vertical displacements that explain many changed rows: each row of a
/// changed tile whose content occurred exactly once in the same column of
/// the previous picture votes for the distance it moved.
fn candidates(prev: &[Vec<u64>], cur: &[Vec<u64>], changed: &[u32], cols: usize, h: usize) -> Vec<i16> {
    let mut votes: HashMap<i32, u32> = HashMap::new();
    let mut index: HashMap<usize, HashMap<u64, Option<usize>>> = HashMap::new();
    for &t in changed {
        let (c, y0) = (t as usize % cols, (t as usize / cols) * TILE);
        let seen = index.entry(c).or_insert_with(|| {
            let mut m: HashMap<u64, Option<usize>> = HashMap::with_capacity(h);
            for (y, &r) in prev[c].iter().enumerate() {
                m.entry(r).and_modify(|v| *v = None).or_insert(Some(y));
            }
            m
        });
        for (y, row) in cur[c].iter().enumerate().take((y0 + TILE).min(h)).skip(y0) {
            if let Some(Some(py)) = seen.get(row) {
                let dy = y as i32 - *py as i32;
                if dy != 0 {
                    *votes.entry(dy).or_default() += 1;
                }
            }
        }
    }
    let mut ranked: Vec<(i32, u32)> = votes.into_iter().filter(|(_, n)| *n >= MIN_VOTES).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(MAX_CANDIDATES).filter_map(|(dy, _)| i16::try_from(dy).ok()).collect()
}

/// Whether tile `t` of the current picture is rows `dy` higher in the previous one.
fn moved(prev: &[Vec<u64>], cur: &[Vec<u64>], t: usize, dy: i16, cols: usize, h: usize) -> bool {
    let (c, y0) = (t % cols, (t / cols) * TILE);
    let y1 = (y0 + TILE).min(h);
    let (src0, src1) = (y0 as i64 - dy as i64, y1 as i64 - dy as i64);
    src0 >= 0 && src1 <= h as i64 && (y0..y1).all(|y| cur[c][y] == prev[c][(y as i64 - dy as i64) as usize])
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

/// Moved, reused and flat tiles of a frame (they travel in its first part).
#[derive(Default)]
struct Refs {
    copies: Vec<(u32, i16)>,
    reused: Vec<(u32, u32)>,
    fills: Vec<(u32, [u8; 3])>,
}

/// The colour of tile `t` if every pixel has it.
fn flat(img: &Image, t: usize, cols: usize) -> Option<[u8; 3]> {
    let (x0, y0) = ((t % cols) * TILE, (t / cols) * TILE);
    let (w, h) = (img.width as usize, img.height as usize);
    let x1 = (x0 + TILE).min(w);
    let first = [img.rgb[(y0 * w + x0) * 3], img.rgb[(y0 * w + x0) * 3 + 1], img.rgb[(y0 * w + x0) * 3 + 2]];
    (y0..(y0 + TILE).min(h))
        .all(|y| img.rgb[(y * w + x0) * 3..(y * w + x1) * 3].chunks_exact(3).all(|p| p == first))
        .then_some(first)
}

/// Encode one frame: `refs` plus `tiles` as a WebP mosaic.
fn encode_tiles(img: &Image, tiles: &[u32], refs: &Refs, key: bool, quality: u8) -> Result<Vec<u8>, FrameError> {
    let header = Header {
        mosaic: Mosaic::Webp,
        width: img.width,
        height: img.height,
        key,
        quality,
        tiles: tiles.to_vec(),
        copies: refs.copies.clone(),
        reused: refs.reused.clone(),
        fills: refs.fills.clone(),
    };
    if tiles.is_empty() {
        return header.write(&[]);
    }
    let (cols, _) = img.grid();
    let (mw, mh) = mosaic_size(tiles.len());
    let mut mosaic = vec![0u8; mw * mh * 3];
    for (slot, &t) in tiles.iter().enumerate() {
        place(img, cols, t as usize, &mut mosaic, mw, slot);
    }
    // libwebp's defaults otherwise (method 4, 4:2:0); its "text" preset
    // measured no better on the bench session.
    let mut config = webp::WebPConfig::new().map_err(|_| FrameError::Encode("WebP configuration".into()))?;
    config.quality = f32::from(quality.min(100));
    let webp = webp::Encoder::from_rgb(&mosaic, mw as u32, mh as u32)
        .encode_advanced(&config)
        .map_err(|e| FrameError::Encode(format!("WebP: {e:?}")))?;
    header.write(&webp)
}

impl Encoder {
    pub fn new(options: EncoderOptions) -> Encoder {
        Encoder { options, prev: None, since_key: 0, delta_bytes: 0, key_bytes: 0, cache: HashMap::new(), next_id: 0 }
    }

    /// Forget the previous capture: the next frame is a key frame.
    pub fn reset(&mut self) {
        self.prev = None;
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
        let row_sums = row_hashes(img, cols);
        // A tile's hash is that of its rows' hashes: the pixels are read once.
        let tiles: Vec<u64> = (0..cols * rows)
            .map(|t| {
                let (c, y0) = (t % cols, (t / cols) * TILE);
                let rows = &row_sums[c][y0..(y0 + TILE).min(h as usize)];
                xxhash_rust::xxh3::xxh3_64(&rows.iter().flat_map(|r| r.to_le_bytes()).collect::<Vec<u8>>())
            })
            .collect();
        let prev = self.prev.as_ref().filter(|p| p.size == (w, h));
        let key = prev.is_none()
            || self.since_key + 1 >= self.options.key_every
            || self.delta_bytes > self.key_bytes.saturating_mul(DELTA_BUDGET);
        let (mut fresh, mut refs) = (Vec::new(), Refs::default());
        match prev {
            Some(p) if !key => {
                let changed: Vec<u32> =
                    (0..tiles.len()).filter(|&t| tiles[t] != p.tiles[t]).map(|t| t as u32).collect();
                let dys = candidates(&p.rows, &row_sums, &changed, cols, h as usize);
                for t in changed {
                    let cached = self.cache.get(&tiles[t as usize]).filter(|&&id| self.next_id - id <= CACHE);
                    match dys.iter().find(|&&dy| moved(&p.rows, &row_sums, t as usize, dy, cols, h as usize)) {
                        Some(&dy) => refs.copies.push((t, dy)),
                        None => match cached {
                            Some(&id) => refs.reused.push((t, id)),
                            None => fresh.push(t),
                        },
                    }
                }
            }
            _ => fresh = (0..tiles.len() as u32).collect(),
        }
        // Flat tiles are sent as their colour: exact and nearly free.
        fresh.retain(|&t| match flat(img, t as usize, cols) {
            Some(rgb) => {
                refs.fills.push((t, rgb));
                false
            }
            None => true,
        });
        if fresh.is_empty() && refs.copies.is_empty() && refs.reused.is_empty() && refs.fills.is_empty() {
            return Ok(Vec::new());
        }
        let mut parts = Vec::new();
        self.split(img, &fresh, &refs, key, &mut parts)?;
        // State moves only once the whole frame encoded: a failed encode
        // leaves the next capture to carry these changes.
        let bytes: usize = parts.iter().map(|p| p.bytes.len()).sum();
        if key {
            self.since_key = 0;
            self.delta_bytes = 0;
            self.key_bytes = bytes;
            self.cache.clear();
            self.next_id = 0;
        } else {
            self.since_key += 1;
            self.delta_bytes += bytes;
        }
        // Mosaic tiles get ids in order, as the decoder will number them.
        for &t in &fresh {
            self.cache.insert(tiles[t as usize], self.next_id);
            self.next_id += 1;
        }
        if self.cache.len() > 2 * CACHE as usize {
            let next = self.next_id;
            self.cache.retain(|_, id| next - *id <= CACHE);
        }
        self.prev = Some(Prev { size: (w, h), tiles, rows: row_sums });
        Ok(parts)
    }

    /// Copies and reuses travel in the first part: they read the previous
    /// picture and earlier tiles, before any tile of this frame lands. A
    /// frame too big for one record, or for one WebP picture, is halved.
    fn split(&self, img: &Image, tiles: &[u32], refs: &Refs, key: bool, out: &mut Vec<Part>) -> Result<(), FrameError> {
        if tiles.len() <= MAX_MOSAIC_TILES {
            let bytes = encode_tiles(img, tiles, refs, key, self.options.quality)?;
            if bytes.len() <= self.options.max_part_bytes || tiles.len() <= 1 {
                let carried = (tiles.len() + refs.copies.len() + refs.reused.len() + refs.fills.len()) as u32;
                out.push(Part { bytes, key, tiles: carried });
                return Ok(());
            }
        }
        let (a, b) = tiles.split_at(tiles.len() / 2);
        self.split(img, a, refs, key, out)?;
        self.split(img, b, &Refs::default(), false, out)
    }
}
