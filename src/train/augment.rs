//! DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
//! Training"): the same random colour, translation and cutout applied to real and fake
//! images before the discriminator, differentiable so G learns through it. It is what makes
//! GANs train on hundreds rather than tens of thousands of images.
//!
//! The random numbers come from a per-step [`SplitMix64`] stream, so a resumed run replays
//! them exactly on any backend.

use burn::tensor::{Int, Tensor, TensorData};

use super::config::Augment;
use crate::latent::SplitMix64;

/// Translation up to 1/8 of the side, cutout of half the side: the paper's settings.
const TRANSLATION_RATIO: f64 = 0.125;
const CUTOUT_RATIO: f64 = 0.5;

/// Applies `policy` in order (colour, then translation, then cutout, as listed).
pub fn diff_augment(images: Tensor<4>, policy: &[Augment], rng: &mut SplitMix64) -> Tensor<4> {
    policy.iter().fold(images, |x, augment| match augment {
        Augment::Color => color(x, rng),
        Augment::Translation => translation(x, rng),
        Augment::Cutout => cutout(x, rng),
    })
}

/// One uniform value per image in [low, high), as an [N, 1, 1, 1] tensor.
fn per_image(x: &Tensor<4>, rng: &mut SplitMix64, low: f64, high: f64) -> Tensor<4> {
    let n = x.dims()[0];
    let values: Vec<f32> = (0..n)
        .map(|_| (low + (high - low) * (1.0 - rng.next_open01())) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, 1, 1]), &x.device())
}

/// Brightness ±0.5, saturation ×[0, 2), contrast ×[0.5, 1.5) (images in [-1, 1]).
fn color(x: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
    let x = x.clone() + per_image(&x, rng, -0.5, 0.5);
    let mean = x.clone().mean_dim(1);
    let x = (x - mean.clone()) * per_image(&mean, rng, 0.0, 2.0) + mean;
    let mean = x.clone().mean_dim(1).mean_dim(2).mean_dim(3);
    (x - mean.clone()) * per_image(&mean, rng, 0.5, 1.5) + mean
}

/// Shifts each image by up to 1/8 of its side in x and y, filling with zeros.
fn translation(x: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let max_shift = |side: usize| (side as f64 * TRANSLATION_RATIO + 0.5) as i64;
    let (sy, sx) = (max_shift(h), max_shift(w));
    let mut index = Vec::with_capacity(n * h * w);
    let mut keep = Vec::with_capacity(n * h * w);
    for _ in 0..n {
        let dy = rng.below(2 * sy as u64 + 1) as i64 - sy;
        let dx = rng.below(2 * sx as u64 + 1) as i64 - sx;
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let (from_y, from_x) = (y + dy, x + dx);
                let inside = (0..h as i64).contains(&from_y) && (0..w as i64).contains(&from_x);
                index.push(if inside {
                    from_y * w as i64 + from_x
                } else {
                    0
                });
                keep.push(if inside { 1.0f32 } else { 0.0 });
            }
        }
    }
    let device = x.device();
    let index: Tensor<3, Int> = Tensor::from_data(TensorData::new(index, [n, 1, h * w]), &device);
    let keep: Tensor<3> = Tensor::from_data(TensorData::new(keep, [n, 1, h * w]), &device);
    let flat: Tensor<3> = x.reshape([n, c, h * w]);
    (flat.gather(2, index.expand([n, c, h * w])) * keep).reshape([n, c, h, w])
}

/// Zeroes one square of half the side per image, at a random centre.
fn cutout(x: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let (ch, cw) = (
        (h as f64 * CUTOUT_RATIO + 0.5) as i64,
        (w as f64 * CUTOUT_RATIO + 0.5) as i64,
    );
    let mut mask = Vec::with_capacity(n * h * w);
    for _ in 0..n {
        let cy = rng.below(h as u64 + (1 - ch as u64 % 2)) as i64;
        let cx = rng.below(w as u64 + (1 - cw as u64 % 2)) as i64;
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let inside = (cy - ch / 2..cy - ch / 2 + ch).contains(&y)
                    && (cx - cw / 2..cx - cw / 2 + cw).contains(&x);
                mask.push(if inside { 0.0f32 } else { 1.0 });
            }
        }
    }
    let mask: Tensor<4> = Tensor::from_data(TensorData::new(mask, [n, 1, h, w]), &x.device());
    x * mask
}
