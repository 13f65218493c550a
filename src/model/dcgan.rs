//! DCGAN (Radford et al. 2015) with exactly the layout of the PyTorch DCGAN example
//! (`pytorch/examples/dcgan/main.py`), so its `netG` state_dicts load here unchanged.
//! Reports 001, 003 and 004 all trained this network.
//!
//! At 64x64 with `latent_dim = 100`, `g_width = d_width = 64`, G has 3,576,704 parameters
//! and D 2,765,568, as in PyTorch. 32x32 drops the widest block, 128x128 adds one.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, relu, tanh};
use burn::tensor::module::{batch_norm_train, conv_transpose2d};
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor};

use super::leaky_relu_slope;

/// The DCGAN weight init of the paper: N(0, 0.02) for convs, N(1, 0.02) for BN scales.
const INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};
const BN_SCALE_INIT: Initializer = Initializer::Normal {
    mean: 1.0,
    std: 0.02,
};
/// LeakyReLU slope used by every DCGAN discriminator.
const SLOPE: f64 = 0.2;

#[derive(Config, Debug, PartialEq)]
pub struct DcganConfig {
    /// Size of the latent vector z (PyTorch's `nz`).
    #[config(default = 100)]
    pub latent_dim: usize,
    /// Width of the generator's last hidden layer (`ngf`); earlier layers are multiples.
    #[config(default = 64)]
    pub g_width: usize,
    /// Width of the discriminator's first layer (`ndf`).
    #[config(default = 64)]
    pub d_width: usize,
    /// Output side in pixels: 32, 64 or 128.
    #[config(default = 64)]
    pub image_size: usize,
    /// Colour channels (`nc`).
    #[config(default = 3)]
    pub channels: usize,
    /// Dropout after each discriminator activation (report 001 used 0.3); 0 disables it.
    #[config(default = 0.0)]
    pub d_dropout: f64,
    /// Batch norm in the discriminator's inner blocks, as in DCGAN. A WGAN-GP critic must not
    /// have it (the penalty is per sample; batch norm mixes samples), so WGAN-GP turns it off.
    #[config(default = true)]
    pub d_batch_norm: bool,
}

impl DcganConfig {
    /// Number of stride-2 upsampling (or downsampling) steps between 4x4 and the image size.
    pub fn resolution_steps(&self) -> Result<usize, String> {
        match self.image_size {
            32 => Ok(3),
            64 => Ok(4),
            128 => Ok(5),
            other => Err(format!(
                "DCGAN image_size must be 32, 64 or 128, not {other}"
            )),
        }
    }

    /// Generator: z [N, latent_dim] → image [N, channels, size, size] in [-1, 1].
    pub fn init_generator(&self, device: &Device) -> Generator {
        let steps = self.resolution_steps().expect("validated config");
        // Widths from the 4x4 block down: 64x64 gives ngf*8, *4, *2, *1.
        let widths: Vec<usize> = (0..steps).rev().map(|i| self.g_width << i).collect();
        let mut blocks = vec![UpBlock::new(self.latent_dim, widths[0], 1, 0, device)];
        for pair in widths.windows(2) {
            blocks.push(UpBlock::new(pair[0], pair[1], 2, 1, device));
        }
        let to_rgb = conv_transpose(self.g_width, self.channels, 2, 1, device);
        Generator { blocks, to_rgb }
    }

    /// Discriminator: image [N, channels, size, size] → one logit per image [N].
    /// PyTorch's example ends in a Sigmoid; here the loss applies it, which is the same model
    /// but numerically safer.
    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        let steps = self.resolution_steps().expect("validated config");
        let widths: Vec<usize> = (0..steps).map(|i| self.d_width << i).collect();
        let from_rgb = conv(self.channels, self.d_width, 2, 1, device);
        let blocks = widths
            .windows(2)
            .map(|pair| DownBlock::new(pair[0], pair[1], self.d_batch_norm, device))
            .collect();
        let head = conv(*widths.last().unwrap(), 1, 1, 0, device);
        let dropout = DropoutConfig::new(self.d_dropout).init();
        Discriminator {
            from_rgb,
            blocks,
            head,
            dropout,
        }
    }
}

/// ConvTranspose(4x4) → BatchNorm → ReLU: doubles the side (or makes 4x4 from 1x1).
#[derive(Module, Debug)]
pub struct UpBlock {
    pub conv: ConvTranspose2d,
    pub norm: BatchNorm,
}

impl UpBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, padding: usize, device: &Device) -> Self {
        Self {
            conv: conv_transpose(c_in, c_out, stride, padding, device),
            norm: batch_norm(c_out, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// Conv(4x4, stride 2) → BatchNorm (optional) → LeakyReLU(0.2): halves the side.
#[derive(Module, Debug)]
pub struct DownBlock {
    pub conv: Conv2d,
    pub norm: Option<BatchNorm>,
}

impl DownBlock {
    fn new(c_in: usize, c_out: usize, with_norm: bool, device: &Device) -> Self {
        Self {
            conv: conv(c_in, c_out, 2, 1, device),
            norm: with_norm.then(|| batch_norm(c_out, device)),
        }
    }

    /// The block's input to its activation (what the critic gradient needs as a mask).
    fn pre_activation(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(x);
        match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// The pre-activation and, with batch norm, its slope per channel with respect to the
    /// conv output when the statistics it normalised with are held fixed: γ/√(σ²+ε) as
    /// [1, C, 1, 1]. Leaves the running statistics alone (this is not a scoring pass).
    fn pre_activation_and_scale(&self, x: Tensor<4>) -> (Tensor<4>, Option<Tensor<4>>) {
        let x = self.conv.forward(x);
        let Some(norm) = &self.norm else {
            return (x, None);
        };
        let (a, variance) = match x.device().is_autodiff() && norm.training.is_enabled() {
            true => {
                let out = batch_norm_train(x, norm.gamma.val(), norm.beta.val(), norm.epsilon);
                (out.output, out.variance)
            }
            false => (norm.forward(x), norm.running_var.value()),
        };
        let channels = variance.dims()[0];
        let scale = norm.gamma.val() / (variance.detach() + norm.epsilon).sqrt();
        (a, Some(scale.reshape([1, channels, 1, 1])))
    }
}

#[derive(Module, Debug)]
pub struct Generator {
    pub blocks: Vec<UpBlock>,
    pub to_rgb: ConvTranspose2d,
}

impl Generator {
    pub fn latent_dim(&self) -> usize {
        self.blocks[0].conv.channels[0]
    }

    /// Shapes are for the 64x64 default (nz 100, ngf 64).
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [n, nz] = z.dims();
        let mut x = z.reshape([n, nz, 1, 1]); // [N, 100, 1, 1]
        for block in &self.blocks {
            x = block.forward(x); // [N, 512, 4, 4] → [N, 256, 8, 8] → [N, 128, 16, 16] → [N, 64, 32, 32]
        }
        tanh(self.to_rgb.forward(x)) // [N, 3, 64, 64]
    }
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub from_rgb: Conv2d,
    pub blocks: Vec<DownBlock>,
    pub head: Conv2d,
    pub dropout: Dropout,
}

impl Discriminator {
    /// Shapes are for the 64x64 default (ndf 64).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        let n = images.dims()[0];
        let mut x = leaky_relu(self.from_rgb.forward(images), SLOPE); // [N, 64, 32, 32]
        x = self.dropout.forward(x);
        for block in &self.blocks {
            let a = block.pre_activation(x); // [N, 128, 16, 16] → [N, 256, 8, 8] → [N, 512, 4, 4]
            x = self.dropout.forward(leaky_relu(a, SLOPE));
        }
        self.head.forward(x).reshape([n]) // [N, 1, 1, 1] → [N] logits
    }

    /// The activations after each block, flattened per image ([N, features] each): what
    /// D has learned to see in a face, for comparing two pictures (latent inversion).
    pub fn features(&self, images: Tensor<4>) -> Vec<Tensor<2>> {
        let mut x = leaky_relu(self.from_rgb.forward(images), SLOPE);
        let mut out = vec![x.clone().flatten(1, 3)];
        for block in &self.blocks {
            x = leaky_relu(block.pre_activation(x), SLOPE);
            out.push(x.clone().flatten(1, 3));
        }
        out
    }

    /// ∇ₓD(x) per image, written as a forward computation so that a first-order backward
    /// through it is the exact WGAN-GP / R1 update (burn has no double backward). The convs
    /// are applied transposed in reverse order, each LeakyReLU replaced by its slope mask at
    /// `x` (a constant almost everywhere). Batch norm enters with the statistics of the batch
    /// held fixed (its per-channel scale γ/√(σ²+ε)): the gradient of D as it scores this batch,
    /// leaving out each image's small share in the batch's mean and variance — what R1 on a
    /// DCGAN discriminator with batch norm can use. Not for critics with dropout.
    pub fn input_gradient(&self, images: Tensor<4>) -> Tensor<4> {
        let mut pre_activations = vec![self.from_rgb.forward(images.clone())];
        let mut scales = vec![None];
        for block in &self.blocks {
            let x = leaky_relu(pre_activations.last().unwrap().clone(), SLOPE);
            let (a, scale) = block.pre_activation_and_scale(x);
            pre_activations.push(a);
            scales.push(scale);
        }
        let n = images.dims()[0];
        let mut grad = Tensor::ones([n, 1, 1, 1], &images.device());
        grad = conv_transpose_of(&self.head, grad);
        let convs = std::iter::once(&self.from_rgb).chain(self.blocks.iter().map(|b| &b.conv));
        let layers = convs.zip(pre_activations).zip(scales).collect::<Vec<_>>();
        for ((conv, a), scale) in layers.into_iter().rev() {
            grad = grad * leaky_relu_slope(a, SLOPE);
            if let Some(scale) = scale {
                grad = grad * scale;
            }
            grad = conv_transpose_of(conv, grad);
        }
        grad
    }
}

/// The transpose of a bias-free conv: maps a gradient at its output to one at its input.
fn conv_transpose_of(conv: &Conv2d, grad: Tensor<4>) -> Tensor<4> {
    let [padding, _] = match conv.padding {
        PaddingConfig2d::Explicit(top, left, _, _) => [top, left],
        _ => unreachable!("DCGAN convs use explicit padding"),
    };
    let options =
        ConvTransposeOptions::new(conv.stride, [padding, padding], [0, 0], conv.dilation, 1);
    conv_transpose2d(grad, conv.weight.val(), None, options)
}

fn conv_transpose(
    c_in: usize,
    c_out: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
        .with_stride([stride, stride])
        .with_padding([padding, padding])
        .with_bias(false)
        .with_initializer(INIT)
        .init(device)
}

fn conv(c_in: usize, c_out: usize, stride: usize, padding: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [4, 4])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .with_initializer(INIT)
        .init(device)
}

fn batch_norm(features: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(features).init(device);
    norm.gamma = BN_SCALE_INIT.init([features], device);
    norm
}
