//! Net2WiderNet (Chen, Goodfellow & Shlens 2016) for the DCGAN generator: a trained
//! generator made wider — more channels in every block — that draws the same portraits, so
//! a larger network continues from a trained one instead of starting from scratch.
//!
//! Each new channel copies an old one (its incoming weights and batch-norm parameters and
//! statistics). The copies of one channel compute the same activation, in training mode too
//! (their batch statistics are equal), so the next layer's weights from that channel are
//! split between its copies: the sum, and with it every portrait, stays what it was. The
//! split is uneven (random shares that sum to one), which keeps the function and breaks the
//! symmetry: equal shares would give the copies equal gradients forever.

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};

use super::dcgan::{DcganConfig, Generator, UpBlock};
use crate::latent::SplitMix64;

/// `generator` (built from `config`) with `g_width` channels in its last hidden block and
/// the same multiples before it; `seed` picks which channels are copied and the shares.
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
    // The latent's channels are not widened: one copy each, share 1.
    let mut incoming = Copies::identity(config.latent_dim);
    for (block, old) in wide.blocks.iter_mut().zip(&generator.blocks) {
        let outgoing = Copies::choose(width(old), width(block), &mut rng);
        let weight = widen_weight(&old.conv.weight.val(), &incoming, &outgoing);
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
    let weight = widen_weight(&generator.to_rgb.weight.val(), &incoming, &channels);
    wide.to_rgb.weight = Param::from_tensor(Tensor::from_data(weight, device));
    Ok((wide, wide_config))
}

fn width(block: &UpBlock) -> usize {
    block.norm.gamma.dims()[0]
}

/// Which old channel each new channel copies, and its share of that channel's outgoing
/// weights (the shares of one old channel's copies sum to one).
struct Copies {
    source: Vec<usize>,
    share: Vec<f32>,
}

impl Copies {
    fn identity(n: usize) -> Self {
        Self {
            source: (0..n).collect(),
            share: vec![1.0; n],
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
        // Shares drawn from (0.5, 1.5], then normalised over each old channel's copies; a
        // channel with one copy keeps share 1 exactly.
        let weight: Vec<f64> = source.iter().map(|_| 0.5 + rng.next_open01()).collect();
        let mut total = vec![0.0f64; old];
        for (s, w) in source.iter().zip(&weight) {
            total[*s] += w;
        }
        let share = source
            .iter()
            .zip(&weight)
            .map(|(s, w)| (w / total[*s]) as f32)
            .collect();
        Self { source, share }
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
/// input row i' is old row source(i') times its share; output column j' old column source(j').
fn widen_weight(weight: &Tensor<4>, incoming: &Copies, outgoing: &Copies) -> TensorData {
    let [c_in, c_out, kh, kw] = weight.dims();
    let values = to_vec(weight.clone().into_data());
    let kernel = kh * kw;
    let mut wide = Vec::with_capacity(incoming.len() * outgoing.len() * kernel);
    for (i, share) in incoming.source.iter().zip(&incoming.share) {
        debug_assert!(*i < c_in);
        for j in &outgoing.source {
            let start = (i * c_out + j) * kernel;
            wide.extend(values[start..start + kernel].iter().map(|v| v * share));
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
