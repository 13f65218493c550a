//! The convolutional VAE of report 001 (Kingma & Welling 2013): a conv encoder gives the mean
//! and log-variance of q(z|x), a conv decoder maps z back to an image in [0, 1] (sigmoid).
//! Sampling uses the decoder alone with z ~ N(0, I).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, relu, sigmoid};
use burn::tensor::{Device, Distribution, Tensor};

const SLOPE: f64 = 0.2;

#[derive(Config, Debug, PartialEq)]
pub struct VaeConfig {
    /// Report 001 used a 512-d latent.
    #[config(default = 512)]
    pub latent_dim: usize,
    /// Channels of the first encoder conv; each stride-2 step doubles it.
    #[config(default = 32)]
    pub width: usize,
    /// Output side in pixels: a power of two, at least 8.
    #[config(default = 64)]
    pub image_size: usize,
    #[config(default = 3)]
    pub channels: usize,
}

impl VaeConfig {
    /// Stride-2 steps between the image and the 4x4 bottleneck.
    pub fn resolution_steps(&self) -> Result<usize, String> {
        let size = self.image_size;
        if size >= 8 && size.is_power_of_two() && size <= 256 {
            Ok(size.trailing_zeros() as usize - 2)
        } else {
            Err(format!(
                "VAE image_size must be a power of two from 8 to 256, not {size}"
            ))
        }
    }

    fn bottleneck_channels(&self) -> usize {
        self.width << (self.resolution_steps().expect("validated config") - 1)
    }

    pub fn init(&self, device: &Device) -> Vae {
        Vae {
            encoder: self.init_encoder(device),
            decoder: self.init_decoder(device),
        }
    }

    pub fn init_encoder(&self, device: &Device) -> Encoder {
        let steps = self.resolution_steps().expect("validated config");
        let widths: Vec<usize> = (0..steps).map(|i| self.width << i).collect();
        let inputs = std::iter::once(self.channels).chain(widths.iter().copied());
        let blocks = inputs
            .zip(&widths)
            .map(|(c_in, &c_out)| ConvBlock {
                conv: Conv2dConfig::new([c_in, c_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
                norm: BatchNormConfig::new(c_out).init(device),
            })
            .collect();
        let flat = self.bottleneck_channels() * 16;
        Encoder {
            blocks,
            to_mean: LinearConfig::new(flat, self.latent_dim).init(device),
            to_log_var: LinearConfig::new(flat, self.latent_dim).init(device),
        }
    }

    pub fn init_decoder(&self, device: &Device) -> Decoder {
        let steps = self.resolution_steps().expect("validated config");
        let widths: Vec<usize> = (0..steps).rev().map(|i| self.width << i).collect();
        let blocks = widths
            .windows(2)
            .map(|pair| UpBlock {
                conv: up_conv(pair[0], pair[1], device),
                norm: BatchNormConfig::new(pair[1]).init(device),
            })
            .collect();
        Decoder {
            from_latent: LinearConfig::new(self.latent_dim, widths[0] * 16).init(device),
            blocks,
            to_rgb: up_conv(self.width, self.channels, device),
        }
    }
}

fn up_conv(c_in: usize, c_out: usize, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([c_in, c_out], [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .init(device)
}

/// Conv(4x4, stride 2) → BatchNorm → LeakyReLU(0.2).
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: Conv2d,
    pub norm: BatchNorm,
}

/// ConvTranspose(4x4, stride 2) → BatchNorm → ReLU.
#[derive(Module, Debug)]
pub struct UpBlock {
    pub conv: ConvTranspose2d,
    pub norm: BatchNorm,
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub blocks: Vec<ConvBlock>,
    pub to_mean: Linear,
    pub to_log_var: Linear,
}

impl Encoder {
    /// Image [N, 3, 64, 64] in [0, 1] → (mean, log variance), each [N, latent_dim].
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let mut x = images;
        for block in &self.blocks {
            x = leaky_relu(block.norm.forward(block.conv.forward(x)), SLOPE); // [N, 32, 32, 32] → … → [N, 256, 4, 4]
        }
        let x: Tensor<2> = x.flatten(1, 3); // [N, 4096]
        (self.to_mean.forward(x.clone()), self.to_log_var.forward(x)) // [N, 512] each
    }
}

#[derive(Module, Debug)]
pub struct Decoder {
    pub from_latent: Linear,
    pub blocks: Vec<UpBlock>,
    pub to_rgb: ConvTranspose2d,
}

impl Decoder {
    pub fn latent_dim(&self) -> usize {
        self.from_latent.weight.dims()[0]
    }

    /// z [N, 512] → image [N, 3, 64, 64] in [0, 1].
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let n = z.dims()[0];
        let [_, flat] = self.from_latent.weight.dims();
        let c = flat / 16;
        let mut x = relu(self.from_latent.forward(z)).reshape([n, c, 4, 4]); // [N, 256, 4, 4]
        for block in &self.blocks {
            x = relu(block.norm.forward(block.conv.forward(x))); // [N, 128, 8, 8] → [N, 64, 16, 16] → [N, 32, 32, 32]
        }
        sigmoid(self.to_rgb.forward(x)) // [N, 3, 64, 64]
    }
}

#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

impl Vae {
    /// Reconstruction with the reparameterisation trick: returns (image, mean, log variance).
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<4>, Tensor<2>, Tensor<2>) {
        let (mean, log_var) = self.encoder.forward(images);
        let noise = Tensor::random(mean.shape(), Distribution::Normal(0.0, 1.0), &mean.device());
        let z = mean.clone() + (log_var.clone() * 0.5).exp() * noise;
        (self.decoder.forward(z), mean, log_var)
    }
}
