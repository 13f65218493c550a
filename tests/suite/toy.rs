//! Procedurally generated toy faces: a coloured ellipse with two eyes and a mouth on a
//! coloured background. Enough structure for a GAN to learn something in a few dozen steps.

use image::{Rgb, RgbImage};
use retrato::data::Dataset;
use retrato::latent::SplitMix64;

pub fn toy_face(size: u32, seed: u64) -> RgbImage {
    let mut rng = SplitMix64::stream(seed, 0);
    let mut unit = || rng.next_open01();
    let background = Rgb([
        (unit() * 120.0) as u8,
        (unit() * 120.0) as u8,
        (unit() * 160.0) as u8,
    ]);
    let skin = Rgb([
        (180.0 + unit() * 70.0) as u8,
        (120.0 + unit() * 80.0) as u8,
        (90.0 + unit() * 70.0) as u8,
    ]);
    let (cx, cy) = (0.5 + (unit() - 0.5) * 0.1, 0.5 + (unit() - 0.5) * 0.1);
    let (rx, ry) = (0.28 + unit() * 0.08, 0.36 + unit() * 0.08);
    let mut image = RgbImage::from_pixel(size, size, background);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let (u, v) = (
            (x as f64 + 0.5) / size as f64,
            (y as f64 + 0.5) / size as f64,
        );
        let inside = |px: f64, py: f64, ax: f64, ay: f64| {
            ((u - px) / ax).powi(2) + ((v - py) / ay).powi(2) <= 1.0
        };
        if inside(cx, cy, rx, ry) {
            *pixel = skin;
        }
        let eye_y = cy - ry * 0.25;
        if inside(cx - rx * 0.4, eye_y, 0.05, 0.04) || inside(cx + rx * 0.4, eye_y, 0.05, 0.04) {
            *pixel = Rgb([20, 20, 30]);
        }
        if inside(cx, cy + ry * 0.45, rx * 0.4, 0.025) {
            *pixel = Rgb([150, 40, 50]);
        }
    }
    image
}

/// `count` toy faces as a training set.
pub fn toy_dataset(count: usize, size: u32) -> Dataset {
    let pixels = (0..count as u64)
        .flat_map(|i| toy_face(size, i).into_raw())
        .collect();
    Dataset::new(pixels, size as usize)
}

/// Writes `count` toy faces as PNGs into `dir`.
pub fn write_toy_folder(dir: &std::path::Path, count: usize, size: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        toy_face(size, i as u64)
            .save(dir.join(format!("face-{i:03}.png")))
            .unwrap();
    }
}
