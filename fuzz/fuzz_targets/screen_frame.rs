#![no_main]
//! Stored screen frames (from agents, read back from the blob store) applied
//! after a real key frame, both as they come and with their checksum
//! repaired, so the header, the packed list, copy and reuse runs and the WebP
//! mosaic (or the first format's JPEG one) are all reached. Nothing may
//! panic, and a failed frame must leave the picture as it was.
use candor_screen::{Canvas, Encoder, EncoderOptions, Image};
use std::sync::OnceLock;

fn key() -> &'static [Vec<u8>] {
    static KEY: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut img = Image::new(96, 64);
        for (i, v) in img.rgb.iter_mut().enumerate() {
            *v = (i * 31 % 251) as u8;
        }
        let mut enc = Encoder::new(EncoderOptions::default());
        let mut parts: Vec<Vec<u8>> = enc.encode(&img).unwrap().into_iter().map(|p| p.bytes).collect();
        // A delta with a scroll and a reuse, as a second seed-like step.
        let mut moved = img.clone();
        moved.rgb.copy_within(96 * 3 * 32.., 0);
        parts.extend(enc.encode(&moved).unwrap().into_iter().map(|p| p.bytes));
        parts
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for sealed in [false, true] {
        let mut canvas = Canvas::new();
        for k in key() {
            canvas.apply(k).unwrap();
        }
        let before = canvas.image().cloned();
        let mut frame = data.to_vec();
        if sealed {
            candor_screen::format::reseal(&mut frame);
        }
        if canvas.apply(&frame).is_err() {
            assert_eq!(canvas.image().cloned(), before, "a bad frame changed the picture");
        }
        let _ = canvas.to_jpeg(50);
    }
});
