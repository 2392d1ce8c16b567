//! Whole pictures, for what is shown rather than stored: a capture as one
//! JPEG (live view, playback) and a reduced copy (the screen wall's tiles).

use crate::Image;

/// `img` as a baseline JPEG at `quality` (1–100).
pub fn jpeg(img: &Image, quality: u8) -> Option<Vec<u8>> {
    let (w, h) = (u16::try_from(img.width).ok()?, u16::try_from(img.height).ok()?);
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.encode(&img.rgb, w, h, jpeg_encoder::ColorType::Rgb).ok()?;
    Some(out)
}

/// `img` reduced to at most `max_width` pixels across (aspect kept), each
/// pixel the mean of the block it covers; a smaller picture is copied.
pub fn reduce(img: &Image, max_width: u32) -> Image {
    if img.width <= max_width || max_width == 0 {
        return img.clone();
    }
    let w = max_width;
    let h = ((u64::from(img.height) * u64::from(w)) / u64::from(img.width)).max(1) as u32;
    let mut out = Image::new(w, h);
    let (sw, sh) = (img.width as usize, img.height as usize);
    for y in 0..h as usize {
        let (y0, y1) = (y * sh / h as usize, ((y + 1) * sh / h as usize).max(y * sh / h as usize + 1));
        for x in 0..w as usize {
            let (x0, x1) = (x * sw / w as usize, ((x + 1) * sw / w as usize).max(x * sw / w as usize + 1));
            let mut sum = [0u32; 3];
            for yy in y0..y1.min(sh) {
                let row = &img.rgb[(yy * sw + x0) * 3..(yy * sw + x1.min(sw)) * 3];
                for px in row.chunks_exact(3) {
                    sum[0] += u32::from(px[0]);
                    sum[1] += u32::from(px[1]);
                    sum[2] += u32::from(px[2]);
                }
            }
            let n = ((y1.min(sh) - y0) * (x1.min(sw) - x0)).max(1) as u32;
            let o = (y * w as usize + x) * 3;
            out.rgb[o] = (sum[0] / n) as u8;
            out.rgb[o + 1] = (sum[1] / n) as u8;
            out.rgb[o + 2] = (sum[2] / n) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_keeps_aspect_and_averages() {
        let mut img = Image::new(1920, 1080);
        for (i, px) in img.rgb.chunks_exact_mut(3).enumerate() {
            if (i % 1920) < 960 {
                px.copy_from_slice(&[200, 100, 0]);
            }
        }
        let t = reduce(&img, 320);
        assert_eq!((t.width, t.height), (320, 180));
        assert_eq!(&t.rgb[..3], &[200, 100, 0]);
        assert_eq!(&t.rgb[(319) * 3..320 * 3], &[0, 0, 0]);
        let odd = reduce(&Image::new(7, 5), 3);
        assert_eq!((odd.width, odd.height), (3, 2));
        assert_eq!(reduce(&Image::new(100, 50), 320).width, 100, "never enlarged");
        let j = jpeg(&t, 60).unwrap();
        assert_eq!(&j[..2], b"\xff\xd8");
    }
}
