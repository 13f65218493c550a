//! Portraits from a generator: seeded latents in, pixel values out. Shared by the CLI and the
//! page so that the same (model, seed) gives the same portraits in both.

use burn::tensor::{Device, Tensor, TensorData};

use crate::latent;
use crate::model::Generator;

/// Portraits per forward pass: bounds memory for any `n` without slowing small requests.
pub const BATCH: usize = 64;

/// The latents of portraits `first..first + count` of `seed`, as a [count, latent_dim] tensor.
pub fn seeded_latents(
    generator: &Generator,
    seed: u64,
    first: u64,
    count: usize,
    device: &Device,
) -> Tensor<2> {
    let dim = generator.latent_dim();
    latents_tensor(latent::latents(seed, first, count, dim), dim, device)
}

/// Row-major [count, dim] values as a tensor on `device`.
pub fn latents_tensor(values: Vec<f32>, dim: usize, device: &Device) -> Tensor<2> {
    let count = values.len() / dim;
    Tensor::from_data(TensorData::new(values, [count, dim]), device)
}

/// Images in [0, 1] ([N, C, H, W]), or with `raw` the generator's own output range.
pub fn run(generator: &Generator, z: Tensor<2>, raw: bool) -> Tensor<4> {
    match raw {
        true => generator.forward(z),
        false => generator.generate(z),
    }
}

/// Synchronous read-back of a whole batch, in [N, C, H, W] order (native and CPU wasm).
#[cfg(not(target_arch = "wasm32"))]
pub fn read(images: Tensor<4>) -> (Vec<f32>, [usize; 4]) {
    let dims = images.dims();
    let values = images
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 after convert");
    (values, dims)
}

/// Portraits 0..n of `seed` as uint8 RGB pixels (N×S×S×3, what their PNGs hold) and S:
/// the input of FID, in `eval fid` and during training alike.
#[cfg(not(target_arch = "wasm32"))]
pub fn portrait_pixels(
    generator: &Generator,
    seed: u64,
    n: usize,
    device: &Device,
) -> (Vec<u8>, usize) {
    let mut pixels = Vec::new();
    let mut size = 0;
    for first in (0..n).step_by(BATCH) {
        let count = BATCH.min(n - first);
        let z = seeded_latents(generator, seed, first as u64, count, device);
        let (values, dims) = read(generator.generate(z));
        size = dims[2];
        for image in crate::image_grid::to_rgb8(&values, dims) {
            pixels.extend(image.into_raw());
        }
    }
    (pixels, size)
}
