//! The fully connected GAN of reports 000 (WGAN-GP critic, art portraits) and 004 (BCE,
//! CelebA): stacks of Linear + LeakyReLU on flattened images, tanh output.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{leaky_relu, tanh};
use burn::tensor::{Device, Tensor};

use super::leaky_relu_slope;

#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    #[config(default = 100)]
    pub latent_dim: usize,
    /// Generator hidden widths, from z upwards (report 004: 256, 512, 1024).
    #[config(default = "vec![256, 512, 1024]")]
    pub g_hidden: Vec<usize>,
    /// Discriminator / critic hidden widths, from the image downwards.
    #[config(default = "vec![1024, 512, 256]")]
    pub d_hidden: Vec<usize>,
    #[config(default = 64)]
    pub image_size: usize,
    #[config(default = 3)]
    pub channels: usize,
    #[config(default = 0.2)]
    pub negative_slope: f64,
    /// Dropout after each generator hidden layer; 0 disables it.
    #[config(default = 0.0)]
    pub g_dropout: f64,
    /// Dropout after each discriminator hidden layer (report 004: 0.3); 0 disables it.
    #[config(default = 0.3)]
    pub d_dropout: f64,
}

impl MlpConfig {
    fn pixels(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    pub fn init_generator(&self, device: &Device) -> Generator {
        Generator {
            hidden: linear_stack(self.latent_dim, &self.g_hidden, device),
            to_pixels: LinearConfig::new(
                *self.g_hidden.last().unwrap_or(&self.latent_dim),
                self.pixels(),
            )
            .init(device),
            dropout: DropoutConfig::new(self.g_dropout).init(),
            negative_slope: self.negative_slope,
            image_shape: [self.channels, self.image_size, self.image_size],
        }
    }

    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        Discriminator {
            hidden: linear_stack(self.pixels(), &self.d_hidden, device),
            head: LinearConfig::new(*self.d_hidden.last().unwrap_or(&self.pixels()), 1)
                .init(device),
            dropout: DropoutConfig::new(self.d_dropout).init(),
            negative_slope: self.negative_slope,
        }
    }
}

fn linear_stack(input: usize, widths: &[usize], device: &Device) -> Vec<Linear> {
    let inputs = std::iter::once(input).chain(widths.iter().copied());
    inputs
        .zip(widths)
        .map(|(i, &o)| LinearConfig::new(i, o).init(device))
        .collect()
}

#[derive(Module, Debug)]
pub struct Generator {
    pub hidden: Vec<Linear>,
    pub to_pixels: Linear,
    pub dropout: Dropout,
    pub negative_slope: f64,
    pub image_shape: [usize; 3],
}

impl Generator {
    pub fn latent_dim(&self) -> usize {
        let first = self.hidden.first().unwrap_or(&self.to_pixels);
        first.weight.dims()[0]
    }

    /// Shapes for the report-004 default (z 100, widths 256/512/1024, 64x64).
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let n = z.dims()[0];
        let mut x = z; // [N, 100]
        for layer in &self.hidden {
            x = self
                .dropout
                .forward(leaky_relu(layer.forward(x), self.negative_slope)); // [N, 256] → [N, 512] → [N, 1024]
        }
        let [c, h, w] = self.image_shape;
        tanh(self.to_pixels.forward(x)).reshape([n, c, h, w]) // [N, 12288] → [N, 3, 64, 64]
    }
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub hidden: Vec<Linear>,
    pub head: Linear,
    pub dropout: Dropout,
    pub negative_slope: f64,
}

impl Discriminator {
    /// Image [N, 3, 64, 64] → one logit (or critic score) per image [N].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        let n = images.dims()[0];
        let mut x: Tensor<2> = images.flatten(1, 3); // [N, 12288]
        for layer in &self.hidden {
            x = self
                .dropout
                .forward(leaky_relu(layer.forward(x), self.negative_slope)); // [N, 1024] → [N, 512] → [N, 256]
        }
        self.head.forward(x).reshape([n]) // [N]
    }

    /// The hidden layers' activations ([N, width] each), for comparing two pictures.
    pub fn features(&self, images: Tensor<4>) -> Vec<Tensor<2>> {
        let mut x: Tensor<2> = images.flatten(1, 3);
        let mut out = Vec::with_capacity(self.hidden.len());
        for layer in &self.hidden {
            x = leaky_relu(layer.forward(x), self.negative_slope);
            out.push(x.clone());
        }
        out
    }

    /// ∇ₓD(x) per image as a forward computation (see the DCGAN critic's): the layers'
    /// weights transposed in reverse order, each LeakyReLU replaced by its slope mask at `x`.
    /// Only for critics without dropout.
    pub fn input_gradient(&self, images: Tensor<4>) -> Tensor<4> {
        let dims = images.dims();
        let mut x: Tensor<2> = images.flatten(1, 3);
        let mut pre_activations = Vec::with_capacity(self.hidden.len());
        for layer in &self.hidden {
            let a = layer.forward(x);
            x = leaky_relu(a.clone(), self.negative_slope);
            pre_activations.push(a);
        }
        // burn stores Linear weights as [in, out]: the head's is [last hidden, 1].
        let mut grad = self
            .head
            .weight
            .val()
            .transpose()
            .expand([dims[0], x.dims()[1]]);
        for (layer, a) in self.hidden.iter().zip(pre_activations).rev() {
            grad = grad * leaky_relu_slope(a, self.negative_slope);
            grad = grad.matmul(layer.weight.val().transpose());
        }
        grad.reshape(dims)
    }
}
