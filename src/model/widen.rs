//! Net2WiderNet (Chen, Goodfellow & Shlens 2016) for the DCGAN generator: a trained
//! generator made wider — more channels in every block — that draws the same portraits, so
//! a larger network continues from a trained one instead of starting from scratch.
//!
//! Each new channel copies an old one (its incoming weights and batch-norm parameters and
//! statistics), and the next layer's weights from that channel are split evenly between its
//! copies. Exact copies would compute the same activation forever — with Adam even uneven
//! shares do not help, as its steps ignore a gradient's scale — so each new copy's incoming
//! weights get a little noise ([`NOISE`] of their spread): the portraits move by a few
//! 8-bit levels, and the copies can learn different things.

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};

use super::dcgan::{DcganConfig, Generator, UpBlock};
use crate::latent::SplitMix64;

/// Noise on a copied channel's incoming weights, as a fraction of their root mean square.
pub const NOISE: f32 = 0.02;

/// `generator` (built from `config`) with `g_width` channels in its last hidden block and
/// the same multiples before it; `seed` picks which channels are copied and their noise.
pub fn widen_generator(
    generator: &Generator,
    config: &DcganConfig,
    g_width: usize,
    seed: u64,
    device: &Device,
) -> Result<(Generator, DcganConfig), String> {
    if g_width <= config.g_width {
        return Err(format!(
            "the generator is {} wide; widening needs a larger g_width, not {g_width}",
            config.g_width
        ));
    }
    let wide_config = DcganConfig {
        g_width,
        ..config.clone()
    };
    let mut wide = wide_config.init_generator(device);
    let mut rng = SplitMix64::stream(seed, 0x7769_6465);
    // The latent's channels are not widened: one copy each, share 1, no noise.
    let mut incoming = Copies::identity(config.latent_dim);
    for (block, old) in wide.blocks.iter_mut().zip(&generator.blocks) {
        let outgoing = Copies::choose(width(old), width(block), &mut rng);
        let weight = widen_weight(&old.conv.weight.val(), &incoming, &outgoing, &mut rng);
        block.conv.weight = Param::from_tensor(Tensor::from_data(weight, device));
        let norm = &mut block.norm;
        let copy = |values: &Tensor<1>| vector(outgoing.gather(values), device);
        norm.gamma = Param::from_tensor(copy(&old.norm.gamma.val()));
        norm.beta = Param::from_tensor(copy(&old.norm.beta.val()));
        norm.running_mean = RunningState::new(copy(&old.norm.running_mean.value()));
        norm.running_var = RunningState::new(copy(&old.norm.running_var.value()));
        incoming = outgoing;
    }
    let channels = Copies::identity(config.channels);
    let weight = widen_weight(
        &generator.to_rgb.weight.val(),
        &incoming,
        &channels,
        &mut rng,
    );
    wide.to_rgb.weight = Param::from_tensor(Tensor::from_data(weight, device));
    Ok((wide, wide_config))
}

fn width(block: &UpBlock) -> usize {
    block.norm.gamma.dims()[0]
}

/// Which old channel each new channel copies, and its share of that channel's outgoing
/// weights (1 / the number of its copies). Channels from `old` on are the new copies.
struct Copies {
    source: Vec<usize>,
    share: Vec<f32>,
    old: usize,
}

impl Copies {
    fn identity(n: usize) -> Self {
        Self {
            source: (0..n).collect(),
            share: vec![1.0; n],
            old: n,
        }
    }

    /// The first `old` channels stay where they are; the others copy random old ones.
    fn choose(old: usize, new: usize, rng: &mut SplitMix64) -> Self {
        let source: Vec<usize> = (0..new)
            .map(|j| match j < old {
                true => j,
                false => rng.below(old as u64) as usize,
            })
            .collect();
        let mut copies = vec![0usize; old];
        for s in &source {
            copies[*s] += 1;
        }
        let share = source.iter().map(|s| 1.0 / copies[*s] as f32).collect();
        Self { source, share, old }
    }

    fn len(&self) -> usize {
        self.source.len()
    }

    /// One value per new channel, copied from its old channel.
    fn gather(&self, values: &Tensor<1>) -> Vec<f32> {
        let values = to_vec(values.clone().into_data());
        self.source.iter().map(|s| values[*s]).collect()
    }
}

/// A transposed conv's weight [in, out, k, k] for the widened input and output channels:
/// input row i' is old row source(i') times its share; output column j' is old column
/// source(j'), with [`NOISE`] added where j' is a new copy.
fn widen_weight(
    weight: &Tensor<4>,
    incoming: &Copies,
    outgoing: &Copies,
    rng: &mut SplitMix64,
) -> TensorData {
    let [c_in, c_out, kh, kw] = weight.dims();
    let values = to_vec(weight.clone().into_data());
    let kernel = kh * kw;
    let spread: Vec<f32> = (0..c_out)
        .map(|j| {
            let column = (0..c_in).flat_map(|i| &values[(i * c_out + j) * kernel..][..kernel]);
            let (sum, n) = column.fold((0.0f64, 0usize), |(s, n), v| (s + (v * v) as f64, n + 1));
            (sum / n as f64).sqrt() as f32
        })
        .collect();
    let mut wide = Vec::with_capacity(incoming.len() * outgoing.len() * kernel);
    for (i, share) in incoming.source.iter().zip(&incoming.share) {
        for (jn, j) in outgoing.source.iter().enumerate() {
            let start = (i * c_out + j) * kernel;
            let noise = match jn >= outgoing.old {
                true => NOISE * spread[*j],
                false => 0.0,
            };
            wide.extend(
                values[start..start + kernel]
                    .iter()
                    .map(|v| match noise > 0.0 {
                        true => (v + noise * rng.next_normal_pair()[0] as f32) * share,
                        false => v * share,
                    }),
            );
        }
    }
    TensorData::new(wide, [incoming.len(), outgoing.len(), kh, kw])
}

fn to_vec(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 after convert")
}

/// A 1-D tensor of per-channel values.
fn vector(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}
