//! The square a person places over a face in their photo, cut out at the model's size. The
//! datasets' faces are aligned and fill the frame; a photo's face is wherever it is, so the
//! page (and `retrato invert --crop`) lets the person say where.

use image::RgbImage;
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

/// A square of the upright picture, in its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Square {
    pub left: u32,
    pub top: u32,
    pub side: u32,
}

/// Fewer pixels across than this is not a face the model can find (it draws 64).
pub const MIN_SIDE: u32 = 24;
/// A square whose luminance varies less than this (standard deviation, of 255) is a flat area.
const MIN_DETAIL: f64 = 4.0;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CropError {
    #[error("the square ({left},{top}, {side} px) reaches outside the {width}x{height} picture")]
    Outside {
        left: u32,
        top: u32,
        side: u32,
        width: u32,
        height: u32,
    },
    #[error(
        "the face is only {side} pixels across; at least {MIN_SIDE} are needed (a larger photo, or a larger square)"
    )]
    TooSmall { side: u32 },
    #[error("the square holds a flat area, no face: place it over one")]
    Flat,
}

impl Square {
    /// The largest centred square, where every dataset's faces are.
    pub fn centred(width: u32, height: u32) -> Self {
        let side = width.min(height);
        Self {
            left: (width - side) / 2,
            top: (height - side) / 2,
            side,
        }
    }
}

/// `square` of `picture`, resized to `size`x`size` (Lanczos), as row-major RGB bytes.
pub fn crop_square(picture: &RgbImage, square: Square, size: u32) -> Result<Vec<u8>, CropError> {
    let (width, height) = picture.dimensions();
    let Square { left, top, side } = square;
    let inside = |start: u32, extent: u32| start.checked_add(side).is_some_and(|end| end <= extent);
    if !inside(left, width) || !inside(top, height) {
        return Err(CropError::Outside {
            left,
            top,
            side,
            width,
            height,
        });
    }
    if side < MIN_SIDE {
        return Err(CropError::TooSmall { side });
    }
    let cut = image::imageops::crop_imm(picture, left, top, side, side).to_image();
    if luminance_spread(&cut) < MIN_DETAIL {
        return Err(CropError::Flat);
    }
    let resized = match side == size {
        true => cut,
        false => image::imageops::resize(&cut, size, size, FilterType::Lanczos3),
    };
    Ok(resized.into_raw())
}

/// Standard deviation of the pixels' luminance (0–255).
fn luminance_spread(picture: &RgbImage) -> f64 {
    let values: Vec<f64> = picture
        .pixels()
        .map(|p| 0.299 * p.0[0] as f64 + 0.587 * p.0[1] as f64 + 0.114 * p.0[2] as f64)
        .collect();
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let variance =
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len().max(1) as f64;
    variance.sqrt()
}

/// `picture` scaled down (never up) so that its longer side is at most `max_side`: what the
/// page shows while the person places the square.
pub fn preview(picture: &RgbImage, max_side: u32) -> RgbImage {
    let (width, height) = picture.dimensions();
    let longer = width.max(height);
    if longer <= max_side {
        return picture.clone();
    }
    let scale = max_side as f64 / longer as f64;
    let w = ((width as f64 * scale).round() as u32).max(1);
    let h = ((height as f64 * scale).round() as u32).max(1);
    image::imageops::resize(picture, w, h, FilterType::Triangle)
}
