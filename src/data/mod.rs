//! Training images: decoding and validating files ([`decode`]), reading folders and archives
//! with a decode cache (native, [`source`], [`cache`]), and turning the decoded set into
//! shuffled batches ([`Dataset`]).

pub mod crop;
pub mod decode;

#[cfg(feature = "native")]
pub mod cache;
#[cfg(feature = "native")]
pub mod source;

use burn::tensor::{Device, Tensor, TensorData};

use crate::latent::{SplitMix64, mix};
pub use crop::{CropError, Square, crop_square};
pub use decode::{DecodeError, Fit, decode_image, decode_upright};

/// Decoded images, all `size`x`size` RGB, packed as N×H×W×3 bytes (the `.npy` layout of the
/// shared test sets).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub pixels: Vec<u8>,
    pub count: usize,
    pub size: usize,
}

/// The value range a model trains in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// tanh generators.
    MinusOneToOne,
    /// The VAE's sigmoid decoder.
    ZeroToOne,
}

impl Dataset {
    pub fn new(pixels: Vec<u8>, size: usize) -> Self {
        let count = pixels.len() / (size * size * 3);
        Self {
            pixels,
            count,
            size,
        }
    }

    pub fn image(&self, index: usize) -> &[u8] {
        let len = self.size * self.size * 3;
        &self.pixels[index * len..(index + 1) * len]
    }

    /// The images at `indices` as an [N, 3, H, W] tensor, mirrored where `flips` says so.
    pub fn batch(
        &self,
        indices: &[usize],
        flips: &[bool],
        range: Range,
        device: &Device,
    ) -> Tensor<4> {
        let s = self.size;
        let (scale, offset) = match range {
            Range::MinusOneToOne => (2.0 / 255.0, -1.0),
            Range::ZeroToOne => (1.0 / 255.0, 0.0),
        };
        let mut values = vec![0f32; indices.len() * 3 * s * s];
        for (slot, (&index, &flip)) in indices.iter().zip(flips).enumerate() {
            let image = self.image(index);
            let out = &mut values[slot * 3 * s * s..(slot + 1) * 3 * s * s];
            for y in 0..s {
                for x in 0..s {
                    let from = if flip { s - 1 - x } else { x };
                    for c in 0..3 {
                        let v = image[(y * s + from) * 3 + c] as f32;
                        out[c * s * s + y * s + x] = v * scale + offset;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [indices.len(), 3, s, s]), device)
    }
}

/// Where each training step's images come from: a fresh shuffle every epoch, the last
/// partial batch dropped, everything a function of (seed, step) so that a resumed run reads
/// the same batches.
#[derive(Clone, Debug)]
pub struct Batches {
    pub count: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub flip: bool,
}

impl Batches {
    pub fn steps_per_epoch(&self) -> u64 {
        (self.count / self.batch_size).max(1) as u64
    }

    pub fn epoch_of(&self, step: u64) -> u64 {
        step / self.steps_per_epoch()
    }

    /// The image indices of `step`, and which to mirror.
    pub fn at(&self, step: u64) -> (Vec<usize>, Vec<bool>) {
        let epoch = self.epoch_of(step);
        let within = (step % self.steps_per_epoch()) as usize;
        let mut order: Vec<usize> = (0..self.count).collect();
        SplitMix64::stream(mix(self.seed ^ 0x5348_5546), epoch).shuffle(&mut order);
        let take = self.batch_size.min(self.count);
        let indices = order[within * take..(within + 1) * take].to_vec();
        let mut coin = SplitMix64::stream(mix(self.seed ^ 0x464C_4950), step);
        let flips = indices
            .iter()
            .map(|_| self.flip && coin.next_u64() & 1 == 1)
            .collect();
        (indices, flips)
    }
}
