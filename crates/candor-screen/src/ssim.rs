//! SSIM on luma (BT.601), over 8×8 windows with a stride of 4 — the
//! windowing of ffmpeg's `ssim` filter, so figures compare with x264's.

use crate::Image;

fn luma(img: &Image) -> Vec<f32> {
    img.rgb.chunks_exact(3).map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect()
}

/// Mean SSIM of two pictures of the same size (0 when the sizes differ).
pub fn ssim(a: &Image, b: &Image) -> f64 {
    if (a.width, a.height) != (b.width, b.height) || a.width < 8 || a.height < 8 {
        return 0.0;
    }
    let (w, h) = (a.width as usize, a.height as usize);
    let (la, lb) = (luma(a), luma(b));
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let (mut sum, mut n) = (0.0f64, 0u64);
    for y in (0..=h - 8).step_by(4) {
        for x in (0..=w - 8).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..8 {
                let row = (y + dy) * w + x;
                for i in row..row + 8 {
                    let (p, q) = (la[i] as f64, lb[i] as f64);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / 64.0, sb / 64.0);
            let va = saa / 64.0 - ma * ma;
            let vb = sbb / 64.0 - mb * mb;
            let cov = sab / 64.0 - ma * mb;
            sum += ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            n += 1;
        }
    }
    sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_is_one_and_noise_lowers_it() {
        let mut a = Image::new(64, 64);
        for (i, v) in a.rgb.iter_mut().enumerate() {
            *v = (i * 7 % 251) as u8;
        }
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
        let mut b = a.clone();
        for v in b.rgb.iter_mut().step_by(5) {
            *v = v.wrapping_add(90);
        }
        assert!(ssim(&a, &b) < 0.9);
        assert_eq!(ssim(&a, &Image::new(32, 64)), 0.0);
    }
}
