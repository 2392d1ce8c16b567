//! Screen frames: how captured screens are encoded for storage, composed
//! back at any instant, and compared (SSIM).
//!
//! A recording is a sequence of frames per display. A *key* frame resets the
//! picture; every other frame carries only the 32×32 tiles that changed since
//! the previous capture, so bytes follow how much the screen changes. Each
//! tile is encoded from the raw capture, never as a residual, so errors never
//! accumulate; showing any instant means decoding one key frame and the
//! deltas after it (bounded by [`encode::EncoderOptions::key_every`]).
//! The choice and its measurements: `docs/decisions/0015-screen-recording.md`.

pub mod canvas;
pub mod encode;
pub mod format;
pub mod picture;
pub mod ssim;

pub use canvas::Canvas;
pub use encode::{Encoder, EncoderOptions, Part};
pub use format::{FrameError, Header, TILE};

/// An RGB picture, 3 bytes per pixel, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn new(width: u32, height: u32) -> Image {
        Image { width, height, rgb: vec![0; width as usize * height as usize * 3] }
    }

    /// Tiles across and down.
    pub fn grid(&self) -> (usize, usize) {
        format::grid(self.width, self.height)
    }
}
