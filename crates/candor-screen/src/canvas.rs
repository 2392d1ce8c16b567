//! Composition: the picture at an instant is its last key frame with every
//! later delta applied in order.

use crate::format::{FrameError, Header, MOSAIC_COLS, TILE};
use crate::Image;

/// The picture being composed.
#[derive(Debug, Default)]
pub struct Canvas {
    image: Option<Image>,
}

/// Decode a frame's mosaic after checking it is exactly the size its header implies.
fn mosaic(header: &Header, jpeg: &[u8]) -> Result<(usize, Vec<u8>), FrameError> {
    let (mw, mh) = crate::format::mosaic_size(header.tiles.len());
    let options = zune_core::options::DecoderOptions::default()
        .set_max_width(mw)
        .set_max_height(mh)
        .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(jpeg, options);
    let pixels = dec.decode().map_err(|e| FrameError::Mosaic(format!("{e:?}")))?;
    let info = dec.info().ok_or_else(|| FrameError::Mosaic("no image information".into()))?;
    if (info.width as usize, info.height as usize) != (mw, mh) || pixels.len() != mw * mh * 3 {
        return Err(FrameError::Mosaic(format!("{}x{} where {mw}x{mh} was expected", info.width, info.height)));
    }
    Ok((mw, pixels))
}

impl Canvas {
    pub fn new() -> Canvas {
        Canvas::default()
    }

    /// Apply one stored frame. A corrupt frame leaves the canvas unchanged.
    pub fn apply(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        let (header, jpeg) = Header::parse(frame)?;
        let (mw, pixels) = mosaic(&header, jpeg)?;
        let (w, h) = (header.width, header.height);
        if header.key {
            self.image = Some(Image::new(w, h));
        }
        let img = match &mut self.image {
            Some(img) if (img.width, img.height) == (w, h) => img,
            _ => return Err(FrameError::NoKey(w, h)),
        };
        let (cols, _) = img.grid();
        let width = w as usize;
        for (slot, &t) in header.tiles.iter().enumerate() {
            let (x0, y0) = ((t as usize % cols) * TILE, (t as usize / cols) * TILE);
            let (mx, my) = ((slot % MOSAIC_COLS) * TILE, (slot / MOSAIC_COLS) * TILE);
            let tw = (width - x0).min(TILE);
            for dy in 0..TILE.min(h as usize - y0) {
                let src = ((my + dy) * mw + mx) * 3;
                let dst = ((y0 + dy) * width + x0) * 3;
                img.rgb[dst..dst + tw * 3].copy_from_slice(&pixels[src..src + tw * 3]);
            }
        }
        Ok(())
    }

    pub fn image(&self) -> Option<&Image> {
        self.image.as_ref()
    }

    /// The picture as a JPEG (what the console shows).
    pub fn to_jpeg(&self, quality: u8) -> Option<Vec<u8>> {
        let img = self.image.as_ref()?;
        let mut out = Vec::new();
        let enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
        enc.encode(&img.rgb, img.width as u16, img.height as u16, jpeg_encoder::ColorType::Rgb).ok()?;
        Some(out)
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
    fn big_frames_split_into_parts_that_compose_to_the_whole() {
        let mut enc = Encoder::new(EncoderOptions { quality: 90, max_part_bytes: 20_000, ..Default::default() });
        let a = page(640, 480, 7);
        let parts = enc.encode(&a).unwrap();
        assert!(parts.len() > 1, "split into {} parts", parts.len());
        assert!(parts[0].key && parts[1..].iter().all(|p| !p.key));
        assert_eq!(parts.iter().map(|p| p.tiles).sum::<u32>(), 10 * 8);
        let mut canvas = Canvas::new();
        for p in &parts {
            canvas.apply(&p.bytes).unwrap();
        }
        assert!(ssim(canvas.image().unwrap(), &a) > 0.95);
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
