//! One image file's bytes → a square RGB8 picture at the model's size, or the reason it
//! cannot be. Shared by native training and the page's upload (no file system here).

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

/// Files larger than this are not read (no portrait needs 64 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Decompression-bomb guard: a header may claim any size, a decode never allocates more.
pub const MAX_PIXELS: u64 = 50_000_000;
const MAX_SIDE: u32 = 32_768;
const MAX_ALLOC: u64 = 1 << 30;

/// How a non-square picture becomes square.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The largest centred square (faces are centred in every dataset here).
    #[default]
    Crop,
    /// The whole picture, letterboxed with black.
    Pad,
}

/// Why a file was skipped. The messages are what the user reads, after the file name.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("file too large ({bytes} bytes; the limit is {MAX_FILE_BYTES})")]
    TooLarge { bytes: u64 },
    #[error("{width}x{height} pixels is more than the {MAX_PIXELS}-pixel limit")]
    TooManyPixels { width: u64, height: u64 },
    #[error("not an image (contents are not JPEG, PNG, WebP, BMP or GIF)")]
    NotAnImage,
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("truncated or corrupt image: {0}")]
    Corrupt(String),
}

/// Decodes, orients (EXIF), converts to RGB, squares and resizes to `size`x`size` (Lanczos).
/// Returns `size * size * 3` bytes, row-major RGB.
pub fn decode_image(bytes: &[u8], size: u32, fit: Fit) -> Result<Vec<u8>, DecodeError> {
    Ok(square_and_resize(decode_upright(bytes)?, size, fit).into_raw())
}

/// Decodes, validates and turns the picture upright by its EXIF orientation, as RGB: what a
/// person sees of it (a photo's crop is placed on this).
pub fn decode_upright(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(DecodeError::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(DecodeError::NotAnImage)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(DecodeError::TooManyPixels {
            width: width as u64,
            height: height as u64,
        });
    }
    // A JPEG decoder fills a cut-off file's missing rows with grey rather than failing;
    // a file without its end-of-image marker is never trained on.
    if format == ImageFormat::Jpeg && !has_jpeg_end(bytes) {
        return Err(DecodeError::Corrupt(
            "JPEG has no end-of-image marker".into(),
        ));
    }
    let orientation = decoder.orientation().map_err(classify)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    image.apply_orientation(orientation);
    Ok(to_rgb(image))
}

/// RGB, with transparency composited over white (not dropped, which would reveal whatever
/// colour transparent pixels happen to hold).
fn to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba32f();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, p) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = p.0[3].clamp(0.0, 1.0);
        for c in 0..3 {
            let v = p.0[c].clamp(0.0, 1.0) * a + (1.0 - a);
            out.0[c] = (v * 255.0).round() as u8;
        }
    }
    rgb
}

fn square_and_resize(rgb: RgbImage, size: u32, fit: Fit) -> RgbImage {
    let (w, h) = rgb.dimensions();
    let square = match fit {
        Fit::Crop => {
            let side = w.min(h);
            image::imageops::crop_imm(&rgb, (w - side) / 2, (h - side) / 2, side, side).to_image()
        }
        Fit::Pad => {
            let side = w.max(h);
            let mut canvas = RgbImage::new(side, side);
            image::imageops::overlay(
                &mut canvas,
                &rgb,
                ((side - w) / 2) as i64,
                ((side - h) / 2) as i64,
            );
            canvas
        }
    };
    match square.width() == size {
        true => square,
        false => image::imageops::resize(&square, size, size, FilterType::Lanczos3),
    }
}

/// Whether the JPEG's end-of-image marker (FF D9) is near its end (some writers pad after it).
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

fn classify(error: ImageError) -> DecodeError {
    match error {
        ImageError::Limits(e) => DecodeError::Unsupported(format!("over the size limits: {e}")),
        ImageError::Unsupported(e) => DecodeError::Unsupported(e.to_string()),
        other => DecodeError::Corrupt(other.to_string()),
    }
}
