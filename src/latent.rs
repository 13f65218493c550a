//! Seeded latent vectors: (seed, index) → z, the same bits on every machine, backend and in
//! wasm, because the generator is ours (SplitMix64) and so is the maths (`libm`, not the
//! platform's). Portrait `index` of `seed` is therefore the same portrait everywhere.

/// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit counter through a fixed mixer. Tiny, and
/// defined bit-for-bit, which is all a latent sampler (and training's shuffles and
/// augmentations, which must replay exactly on resume) needs.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// An independent stream for each (seed, index): e.g. (run seed, training step).
    pub fn stream(seed: u64, index: u64) -> Self {
        Self(mix(seed) ^ mix(index.wrapping_add(0xD1B5_4A32_D192_ED03)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in (0, 1], never 0 so that ln() is finite.
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n ≥ 1); the tiny modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Two independent standard normal values (Box–Muller).
    pub fn next_normal_pair(&mut self) -> [f64; 2] {
        let radius = libm::sqrt(-2.0 * libm::log(self.next_open01()));
        let angle = 2.0 * core::f64::consts::PI * self.next_open01();
        [radius * libm::cos(angle), radius * libm::sin(angle)]
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// A 64-bit mixer, also used to derive independent seeds (`mix(seed ^ purpose)`).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The latent vector of portrait `index` of `seed`: `dim` standard normal values
/// (Box–Muller). Each (seed, index) has its own stream, so portrait 5 does not depend on how
/// many portraits were drawn before it.
pub fn latent(seed: u64, index: u64, dim: usize) -> Vec<f32> {
    let mut rng = SplitMix64::stream(seed, index);
    let mut z = Vec::with_capacity(dim + 1);
    while z.len() < dim {
        z.extend(rng.next_normal_pair().map(|v| v as f32));
    }
    z.truncate(dim);
    z
}

/// Latents for portraits `first..first + count` of `seed`, row-major [count, dim].
pub fn latents(seed: u64, first: u64, count: usize, dim: usize) -> Vec<f32> {
    (0..count as u64)
        .flat_map(|i| latent(seed, first + i, dim))
        .collect()
}

/// Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): keeps the
/// interpolated vectors at the typical norm of a Gaussian sample, where straight-line
/// interpolation would pass through low-norm, washed-out latents.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| {
        v.iter()
            .map(|x| (*x as f64) * (*x as f64))
            .sum::<f64>()
            .sqrt()
    };
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let cos = (dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)).clamp(-1.0, 1.0);
    let omega = libm::acos(cos);
    let t = t as f64;
    if omega.abs() < 1e-6 {
        return a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 * (1.0 - t) + *y as f64 * t) as f32)
            .collect();
    }
    let (wa, wb) = (
        libm::sin((1.0 - t) * omega) / libm::sin(omega),
        libm::sin(t * omega) / libm::sin(omega),
    );
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32)
        .collect()
}

/// Purpose tag of the noise behind variations (see [`variations`]).
const VARIATION_STREAM: u64 = 0x7661_7269_6174_696F;

/// `count` variations of portrait `index` of `seed`: z·cos θ + n_k·sin θ with fresh standard
/// normal n_k and θ = strength·π/2, so every variation is itself a standard normal sample
/// (strength 0: the portrait itself; 1: unrelated portraits). Deterministic in all arguments.
pub fn variations(seed: u64, index: u64, dim: usize, count: usize, strength: f32) -> Vec<f32> {
    let noise_seed = mix(seed ^ mix(index ^ VARIATION_STREAM));
    variations_around(&latent(seed, index, dim), noise_seed, count, strength)
}

/// `count` variations of any latent `z` (a photo's, found by inversion), the same way as
/// [`variations`]; the noise is seeded by the latent's own values, so they are reproducible.
pub fn variations_of(z: &[f32], count: usize, strength: f32) -> Vec<f32> {
    let noise_seed = z
        .iter()
        .fold(VARIATION_STREAM, |h, v| mix(h ^ v.to_bits() as u64));
    variations_around(z, noise_seed, count, strength)
}

fn variations_around(z: &[f32], noise_seed: u64, count: usize, strength: f32) -> Vec<f32> {
    let theta = strength.clamp(0.0, 1.0) as f64 * core::f64::consts::FRAC_PI_2;
    let (keep, add) = (libm::cos(theta), libm::sin(theta));
    (0..count as u64)
        .flat_map(|k| {
            let noise = latent(noise_seed, k, z.len());
            z.iter()
                .zip(noise)
                .map(|(a, b)| (keep * *a as f64 + add * b as f64) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `frames` latents from `a` to `b` along the sphere (both ends included), row-major.
pub fn interpolation(a: &[f32], b: &[f32], frames: usize) -> Vec<f32> {
    let last = frames.saturating_sub(1).max(1) as f32;
    (0..frames)
        .flat_map(|i| slerp(a, b, i as f32 / last))
        .collect()
}
