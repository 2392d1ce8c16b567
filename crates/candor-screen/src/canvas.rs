//! Composition: the picture at an instant is its last key frame with every
//! later delta applied in order — moved tiles from the picture before,
//! reused tiles from the ids given since the key frame, then the mosaic.

use crate::format::{FrameError, Header, Mosaic, CACHE, MOSAIC_COLS, TILE};
use crate::Image;

/// The picture being composed.
#[derive(Debug, Default)]
pub struct Canvas {
    image: Option<Image>,
    /// Mosaic tiles by id modulo [`CACHE`], each TILE×TILE RGB.
    cache: Vec<Vec<u8>>,
    next_id: u32,
}

/// Decode a frame's mosaic after checking it is exactly the size its header
/// implies (a forged size would make the decoder allocate for it).
fn mosaic(header: &Header, bytes: &[u8]) -> Result<(usize, Vec<u8>), FrameError> {
    let (mw, mh) = crate::format::mosaic_size(header.tiles.len());
    let wrong = |w, h| FrameError::Mosaic(format!("{w}x{h} where {mw}x{mh} was expected"));
    let pixels = match header.mosaic {
        Mosaic::Webp => {
            let bad = |e: image_webp::DecodingError| FrameError::Mosaic(e.to_string());
            let mut dec = image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).map_err(bad)?;
            let (w, h) = dec.dimensions();
            if (w as usize, h as usize) != (mw, mh) || dec.has_alpha() || dec.is_animated() {
                return Err(wrong(w as usize, h as usize));
            }
            let mut pixels = vec![0; mw * mh * 3];
            dec.read_image(&mut pixels).map_err(bad)?;
            pixels
        }
        Mosaic::Jpeg => {
            let options = zune_core::options::DecoderOptions::default()
                .set_max_width(mw)
                .set_max_height(mh)
                .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB);
            let mut dec = zune_jpeg::JpegDecoder::new_with_options(bytes, options);
            let pixels = dec.decode().map_err(|e| FrameError::Mosaic(format!("{e:?}")))?;
            let info = dec.info().ok_or_else(|| FrameError::Mosaic("no image information".into()))?;
            if (info.width as usize, info.height as usize) != (mw, mh) || pixels.len() != mw * mh * 3 {
                return Err(wrong(info.width as usize, info.height as usize));
            }
            pixels
        }
    };
    Ok((mw, pixels))
}

impl Canvas {
    pub fn new() -> Canvas {
        Canvas::default()
    }

    /// Apply one stored frame. A corrupt frame leaves the canvas unchanged.
    pub fn apply(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        let (header, bytes) = Header::parse(frame)?;
        let (mw, pixels) = if header.tiles.is_empty() { (0, Vec::new()) } else { mosaic(&header, bytes)? };
        let (w, h) = (header.width, header.height);
        if let Some((_, id)) = header.reused.iter().find(|(_, id)| *id >= self.next_id || self.next_id - id > CACHE) {
            return Err(FrameError::BadCopy(format!(
                "tile id {id} is not among the last {CACHE} before {}",
                self.next_id
            )));
        }
        if header.key {
            self.image = Some(Image::new(w, h));
            self.next_id = 0;
        }
        let img = match &mut self.image {
            Some(img) if (img.width, img.height) == (w, h) => img,
            _ => return Err(FrameError::NoKey(w, h)),
        };
        let (cols, _) = img.grid();
        let width = w as usize;
        if !header.copies.is_empty() {
            // Copies read the picture as it was before this frame.
            let before = img.rgb.clone();
            for &(t, dy) in &header.copies {
                let (x0, y0) = ((t as usize % cols) * TILE, (t as usize / cols) * TILE);
                let tw = (width - x0).min(TILE);
                for y in y0..(y0 + TILE).min(h as usize) {
                    let src = ((y as i64 - dy as i64) as usize * width + x0) * 3;
                    let dst = (y * width + x0) * 3;
                    img.rgb[dst..dst + tw * 3].copy_from_slice(&before[src..src + tw * 3]);
                }
            }
        }
        for &(t, id) in &header.reused {
            let tile = &self.cache[(id % CACHE) as usize];
            let (x0, y0) = ((t as usize % cols) * TILE, (t as usize / cols) * TILE);
            let tw = (width - x0).min(TILE);
            for dy in 0..TILE.min(h as usize - y0) {
                let dst = ((y0 + dy) * width + x0) * 3;
                img.rgb[dst..dst + tw * 3].copy_from_slice(&tile[dy * TILE * 3..(dy * TILE + tw) * 3]);
            }
        }
        for &(t, rgb) in &header.fills {
            let (x0, y0) = ((t as usize % cols) * TILE, (t as usize / cols) * TILE);
            let tw = (width - x0).min(TILE);
            for dy in 0..TILE.min(h as usize - y0) {
                let dst = ((y0 + dy) * width + x0) * 3;
                for px in img.rgb[dst..dst + tw * 3].chunks_exact_mut(3) {
                    px.copy_from_slice(&rgb);
                }
            }
        }
        for (slot, &t) in header.tiles.iter().enumerate() {
            let (x0, y0) = ((t as usize % cols) * TILE, (t as usize / cols) * TILE);
            let (mx, my) = ((slot % MOSAIC_COLS) * TILE, (slot / MOSAIC_COLS) * TILE);
            let tw = (width - x0).min(TILE);
            for dy in 0..TILE.min(h as usize - y0) {
                let src = ((my + dy) * mw + mx) * 3;
                let dst = ((y0 + dy) * width + x0) * 3;
                img.rgb[dst..dst + tw * 3].copy_from_slice(&pixels[src..src + tw * 3]);
            }
            // Every mosaic tile takes the next id, as the encoder numbered it.
            let mut tile = Vec::with_capacity(TILE * TILE * 3);
            for dy in 0..TILE {
                let src = ((my + dy) * mw + mx) * 3;
                tile.extend_from_slice(&pixels[src..src + TILE * 3]);
            }
            let slot = (self.next_id % CACHE) as usize;
            if slot < self.cache.len() {
                self.cache[slot] = tile;
            } else {
                self.cache.push(tile);
            }
            self.next_id += 1;
        }
        Ok(())
    }

    pub fn image(&self) -> Option<&Image> {
        self.image.as_ref()
    }

    /// The picture as a JPEG (what the console shows).
    pub fn to_jpeg(&self, quality: u8) -> Option<Vec<u8>> {
        crate::picture::jpeg(self.image.as_ref()?, quality)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Encoder, EncoderOptions};
    use crate::ssim::ssim;

    /// An office-like picture: a light page with dark "text" strokes.
    fn page(w: u32, h: u32, seed: u64) -> Image {
        let mut img = Image::new(w, h);
        let mut s = seed;
        for y in 0..h as usize {
            for x in 0..w as usize {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let text = (y % 20) < 12 && (x / 7 + y / 20) % 9 != 0 && (s >> 60) < 9;
                let v = if text { 30 } else { 245 };
                let i = (y * w as usize + x) * 3;
                img.rgb[i..i + 3].copy_from_slice(&[v, v, (v as u16 * 9 / 10) as u8]);
            }
        }
        img
    }

    #[test]
    fn unchanged_adds_nothing_and_deltas_compose_exactly_the_changed_tiles() {
        let mut enc = Encoder::new(EncoderOptions { quality: 85, ..Default::default() });
        // An odd size: edge tiles are partial.
        let a = page(333, 201, 1);
        let key = enc.encode(&a).unwrap();
        assert!(key[0].key);
        assert!(enc.encode(&a).unwrap().is_empty(), "an unchanged screen adds no frame");
        let mut b = a.clone();
        for y in 130..140 {
            for x in 320..333 {
                b.rgb[(y * 333 + x) * 3] = 255;
            }
        }
        let delta = enc.encode(&b).unwrap();
        assert_eq!(delta.len(), 1);
        assert!(!delta[0].key);
        assert_eq!(delta[0].tiles, 1, "only the one changed (edge) tile");
        let mut canvas = Canvas::new();
        assert_eq!(canvas.apply(&delta[0].bytes).unwrap_err(), FrameError::NoKey(333, 201));
        canvas.apply(&key[0].bytes).unwrap();
        let s = ssim(canvas.image().unwrap(), &a);
        assert!(s > 0.95, "key frame ssim {s}");
        canvas.apply(&delta[0].bytes).unwrap();
        let s = ssim(canvas.image().unwrap(), &b);
        assert!(s > 0.95, "composed ssim {s}");
    }

    #[test]
    fn a_scroll_is_sent_as_copies_plus_the_uncovered_strip() {
        let mut enc = Encoder::new(EncoderOptions { quality: 85, ..Default::default() });
        let (w, h) = (640usize, 480usize);
        let doc = page(w as u32, 2000, 11);
        let view = |top: usize| Image {
            width: w as u32,
            height: h as u32,
            rgb: doc.rgb[top * w * 3..(top + h) * w * 3].to_vec(),
        };
        let mut canvas = Canvas::new();
        for p in enc.encode(&view(0)).unwrap() {
            canvas.apply(&p.bytes).unwrap();
        }
        let scrolled = view(40);
        let parts = enc.encode(&scrolled).unwrap();
        let (header, _) = crate::format::Header::parse(&parts[0].bytes).unwrap();
        assert!(header.copies.len() >= 240, "most tiles moved up 40 rows: {} copies", header.copies.len());
        assert!(header.copies.iter().all(|c| c.1 == -40), "{:?}", &header.copies[..3]);
        assert!(
            header.tiles.len() <= 40,
            "only the uncovered strip (two tile rows) is encoded: {}",
            header.tiles.len()
        );
        for p in &parts {
            canvas.apply(&p.bytes).unwrap();
        }
        let s = ssim(canvas.image().unwrap(), &scrolled);
        assert!(s > 0.95, "scrolled ssim {s}");
    }

    #[test]
    fn a_window_raised_again_reuses_its_earlier_tiles() {
        let mut enc = Encoder::new(EncoderOptions { quality: 85, ..Default::default() });
        let (a, b) = (page(320, 256, 1), page(320, 256, 2));
        let mut canvas = Canvas::new();
        for img in [&a, &b, &a, &b] {
            let parts = enc.encode(img).unwrap();
            for p in &parts {
                canvas.apply(&p.bytes).unwrap();
            }
            assert!(ssim(canvas.image().unwrap(), img) > 0.95);
        }
        let third = enc.encode(&a).unwrap();
        let (header, _) = crate::format::Header::parse(&third[0].bytes).unwrap();
        assert_eq!((header.tiles.len(), header.reused.len()), (0, 80), "the whole picture from earlier tiles");
        assert!(third[0].bytes.len() < 200, "{} bytes", third[0].bytes.len());
        canvas.apply(&third[0].bytes).unwrap();
        assert!(ssim(canvas.image().unwrap(), &a) > 0.95);
        // An id the decoder never gave is an error, not a picture.
        let mut fresh = Canvas::new();
        assert!(matches!(fresh.apply(&third[0].bytes), Err(FrameError::BadCopy(_))));
    }

    #[test]
    fn big_frames_split_into_parts_that_compose_to_the_whole() {
        let mut enc = Encoder::new(EncoderOptions { quality: 90, max_part_bytes: 20_000, ..Default::default() });
        let a = page(640, 480, 7);
        let parts = enc.encode(&a).unwrap();
        assert!(parts.len() > 1, "split into {} parts", parts.len());
        assert!(parts[0].key && parts[1..].iter().all(|p| !p.key));
        assert_eq!(parts.iter().map(|p| p.tiles).sum::<u32>(), 20 * 15);
        let mut canvas = Canvas::new();
        for p in &parts {
            canvas.apply(&p.bytes).unwrap();
        }
        assert!(ssim(canvas.image().unwrap(), &a) > 0.95);
    }

    /// More tiles than one WebP picture may hold (16,383 pixels high) go in
    /// several parts.
    #[test]
    fn a_huge_screen_splits_into_mosaics_webp_can_hold() {
        let mut enc = Encoder::new(EncoderOptions { max_part_bytes: usize::MAX, ..Default::default() });
        let a = page(4096, 4128, 5);
        let parts = enc.encode(&a).unwrap();
        assert_eq!(parts.len(), 2);
        let mut canvas = Canvas::new();
        for p in &parts {
            let (header, _) = Header::parse(&p.bytes).unwrap();
            assert!(header.tiles.len() <= crate::format::MAX_MOSAIC_TILES);
            canvas.apply(&p.bytes).unwrap();
        }
        assert!(ssim(canvas.image().unwrap(), &a) > 0.9);
    }

    /// A key frame of the first format (JPEG mosaic, list not packed),
    /// written by the encoder before WebP: recordings kept from then still play.
    #[test]
    fn frames_of_the_first_format_still_compose() {
        let frame = include_bytes!("../testdata/csf1-key.csf");
        let (w, h) = (96u32, 64u32);
        let mut img = Image::new(w, h);
        for y in 0..h as usize {
            for x in 0..w as usize {
                let text = (y % 16) < 9 && (x / 5 + y / 16) % 7 != 0 && (x * 31 + y * 17) % 5 < 3;
                let v = if text { 30 } else { 245 };
                let i = (y * w as usize + x) * 3;
                img.rgb[i..i + 3].copy_from_slice(&[v, v, (v as u16 * 9 / 10) as u8]);
            }
        }
        let (header, _) = Header::parse(frame).unwrap();
        assert_eq!((header.mosaic, header.key, header.tiles.len()), (Mosaic::Jpeg, true, 6));
        let mut canvas = Canvas::new();
        canvas.apply(frame).unwrap();
        let s = ssim(canvas.image().unwrap(), &img);
        assert!(s > 0.95, "ssim {s}");
    }

    #[test]
    fn corrupt_frames_are_errors_never_pictures() {
        let mut enc = Encoder::new(EncoderOptions::default());
        let a = page(200, 100, 3);
        let key = enc.encode(&a).unwrap().remove(0).bytes;
        let mut canvas = Canvas::new();
        let truncated = &key[..key.len() / 2];
        assert!(canvas.apply(truncated).is_err());
        assert!(canvas.image().is_none(), "nothing shown from a corrupt frame");
        let mut rng = 1u64;
        for _ in 0..300 {
            let mut bad = key.clone();
            for _ in 0..4 {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (rng >> 33) as usize % bad.len();
                bad[i] ^= (rng >> 20) as u8 | 1;
            }
            let _ = Canvas::new().apply(&bad);
        }
    }
}
