//! From generator output to pictures: float images → RGB8, tiled into a grid (the fixed-noise
//! grids of the PyTorch DCGAN example), encoded as PNG.

use image::{ImageEncoder, Rgb, RgbImage};

/// Space between tiles, as torchvision's `make_grid` default.
pub const PADDING: u32 = 2;
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 24]);

/// Converts N images in [0, 1], laid out [N, C, H, W] (C = 1 or 3), to RGB8.
/// Rounds as torchvision's `save_image` does: `floor(v * 255 + 0.5)`, clamped.
pub fn to_rgb8(values: &[f32], dims: [usize; 4]) -> Vec<RgbImage> {
    let [n, c, h, w] = dims;
    assert_eq!(
        values.len(),
        n * c * h * w,
        "values do not match dims {dims:?}"
    );
    let plane = h * w;
    let quantize = |v: f32| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
    (0..n)
        .map(|i| {
            let image = &values[i * c * plane..(i + 1) * c * plane];
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = y as usize * w + x as usize;
                let channel = |k: usize| quantize(image[k.min(c - 1) * plane + at]);
                Rgb([channel(0), channel(1), channel(2)])
            })
        })
        .collect()
}

/// Tiles images row by row, `columns` per row (the last row may be short).
pub fn grid(images: &[RgbImage], columns: usize) -> RgbImage {
    let Some(first) = images.first() else {
        return RgbImage::new(1, 1);
    };
    let columns = columns.clamp(1, images.len()) as u32;
    let rows = images.len().div_ceil(columns as usize) as u32;
    let (w, h) = first.dimensions();
    let mut canvas = RgbImage::from_pixel(
        columns * (w + PADDING) + PADDING,
        rows * (h + PADDING) + PADDING,
        BACKGROUND,
    );
    for (i, image) in images.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let (x, y) = (PADDING + col * (w + PADDING), PADDING + row * (h + PADDING));
        image::imageops::replace(&mut canvas, image, x as i64, y as i64);
    }
    canvas
}

/// A roughly square grid: √N columns, rounded up.
pub fn square_grid(images: &[RgbImage]) -> RgbImage {
    let columns = (images.len() as f64).sqrt().ceil() as usize;
    grid(images, columns)
}

/// PNG bytes of an image (deterministic: same pixels, same bytes).
pub fn png_bytes(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding a PNG into memory cannot fail");
    out
}
