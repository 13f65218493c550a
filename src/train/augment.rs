//! DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
//! Training"): the same random colour, translation and cutout applied to real and fake
//! images before the discriminator, differentiable so G learns through it. It is what makes
//! GANs train on hundreds rather than tens of thousands of images. Beside it, the geometric
//! group of ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
//! Data"), each transform with a probability below the point where it would leak into G.
//!
//! The random numbers come from a per-step [`SplitMix64`] stream, so a resumed run replays
//! them exactly on any backend.

use burn::tensor::ops::{GridSampleOptions, GridSamplePaddingMode, InterpolateMode};
use burn::tensor::{Int, Tensor, TensorData};

use super::config::Augment;
use crate::latent::SplitMix64;

/// Translation up to 1/8 of the side, cutout of half the side: the paper's settings.
const TRANSLATION_RATIO: f64 = 0.125;
const CUTOUT_RATIO: f64 = 0.5;

/// ADA's strengths for its geometric transforms: log2-normal scale (σ 0.2), rotation up to
/// half a turn either way, log2-normal aspect change (σ 0.2), normal fractional shift
/// (σ 1/8 of the side).
const SCALE_STD: f64 = 0.2;
const ASPECT_STD: f64 = 0.2;
const SHIFT_STD: f64 = 0.125;

/// Applies `policy` in order (as listed); `geometric_p` (one value) is the probability of
/// each geometric transform.
pub fn diff_augment(
    images: Tensor<4>,
    policy: &[Augment],
    geometric_p: Tensor<1>,
    rng: &mut SplitMix64,
) -> Tensor<4> {
    policy.iter().fold(images, |x, augment| match augment {
        Augment::Color => color(x, rng),
        Augment::Translation => translation(x, rng),
        Augment::Cutout => cutout(x, rng),
        Augment::Geometric => geometric(x, rng, geometric_p.clone()),
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

/// A standard normal value (the first of a Box–Muller pair).
fn normal(rng: &mut SplitMix64) -> f64 {
    rng.next_normal_pair()[0]
}

/// Per image and transform: the transform's parameter (drawn whether it is kept or not, so
/// that the stream does not depend on `p`) and a uniform value; the transform is kept where
/// that value is at most `p`.
const GEOMETRIC_TRANSFORMS: usize = 6;

/// ADA's geometric transforms (x-flip, isotropic scale, rotation, aspect, shift in x and y),
/// each kept with probability `p` (a tensor, so that ADA can adapt it on the device without
/// reading it back), composed per image into one affine sampling map and resampled
/// bilinearly with mirrored borders (`grid_sample_2d`: differentiable towards G). The
/// distributions are symmetric, so the map serves as the inverse of the transform it stands
/// for. An image that keeps none is resampled at its own pixel centres: unchanged.
fn geometric(x: Tensor<4>, rng: &mut SplitMix64, p: Tensor<1>) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let device = x.device();
    let mut parameters = Vec::with_capacity(n * GEOMETRIC_TRANSFORMS);
    let mut uniforms = Vec::with_capacity(n * GEOMETRIC_TRANSFORMS);
    for _ in 0..n {
        let shift_x = 2.0 * SHIFT_STD * normal(rng); // the side spans 2 grid units
        let shift_y = 2.0 * SHIFT_STD * normal(rng);
        let drawn = [
            -1.0,
            libm::exp2(SCALE_STD * normal(rng)),
            core::f64::consts::PI * (2.0 * rng.next_open01() - 1.0),
            libm::exp2(ASPECT_STD * normal(rng)),
            shift_x,
            shift_y,
        ];
        parameters.extend(drawn.map(|v| v as f32));
        uniforms.extend((0..GEOMETRIC_TRANSFORMS).map(|_| rng.next_open01() as f32));
    }
    let shape = [n, GEOMETRIC_TRANSFORMS];
    let parameters: Tensor<2> = Tensor::from_data(TensorData::new(parameters, shape), &device);
    let uniforms: Tensor<2> = Tensor::from_data(TensorData::new(uniforms, shape), &device);
    let kept = uniforms
        .lower_equal(p.unsqueeze::<2>().expand(shape))
        .float();
    // Kept: the drawn value; not kept: the identity's (1 for factors, 0 for the angle and shifts).
    let identity: Tensor<2> = Tensor::from_data(
        TensorData::new(
            vec![1.0f32, 1.0, 0.0, 1.0, 0.0, 0.0],
            [1, GEOMETRIC_TRANSFORMS],
        ),
        &device,
    );
    let values = identity.clone() + (parameters - identity) * kept;
    let column = |i: usize| values.clone().slice([0..n, i..i + 1]);
    let (flip, scale, angle, aspect) = (column(0), column(1), column(2), column(3));
    let (cos, sin) = (angle.clone().cos(), angle.sin());
    // Shift ∘ aspect ∘ rotation ∘ scale ∘ flip, as [[a, b], [c, d]] plus (column 4, column 5).
    let row_x = aspect.clone() * scale.clone();
    let row_y = scale / aspect;
    let (a, b) = (
        row_x.clone() * cos.clone() * flip.clone(),
        row_x.neg() * sin.clone(),
    );
    let (c, d) = (row_y.clone() * sin * flip, row_y * cos);
    let centres = |side: usize| (0..side).map(move |i| (2 * i + 1) as f32 / side as f32 - 1.0);
    let base_x: Vec<f32> = (0..h).flat_map(|_| centres(w)).collect();
    let base_y: Vec<f32> = centres(h).flat_map(|y| (0..w).map(move |_| y)).collect();
    let base =
        |values: Vec<f32>| Tensor::<2>::from_data(TensorData::new(values, [1, h * w]), &device);
    let (base_x, base_y) = (base(base_x), base(base_y));
    let grid_x = a * base_x.clone() + b * base_y.clone() + column(4);
    let grid_y = c * base_x + d * base_y + column(5);
    let grid: Tensor<3> = Tensor::stack(vec![grid_x, grid_y], 2);
    let options = GridSampleOptions::new(InterpolateMode::Bilinear)
        .with_padding_mode(GridSamplePaddingMode::Reflection)
        .with_align_corners(false);
    x.grid_sample_2d(grid.reshape([n, h, w, 2]), options)
}
