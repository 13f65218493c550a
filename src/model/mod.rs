//! The model families: one file each, every one a burn `Module` built from a `Config`.
//! [`ModelConfig`] names a family and its full configuration (this is what the model file
//! stores); [`Generator`] is whichever network turns latent vectors into images.

pub mod dcgan;
pub mod mlp;
pub mod vae;
pub mod widen;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::nn::BatchNorm;
use burn::tensor::{Device, Tensor, TensorData};
use burn_store::ModuleSnapshot;
use serde::{Deserialize, Serialize};

pub use dcgan::DcganConfig;
pub use mlp::MlpConfig;
pub use vae::VaeConfig;

/// A model family with its full configuration, as stored in a model file's header.
/// Reading one fills the fields not given with the family's defaults (so presets stay short
/// and files written before a field existed still load) and refuses fields it does not know.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelConfig {
    Dcgan(DcganConfig),
    Mlp(MlpConfig),
    Vae(VaeConfig),
}

/// The derived form of [`ModelConfig`], used once the defaults are filled in.
#[derive(Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
enum CompleteModelConfig {
    Dcgan(DcganConfig),
    Mlp(MlpConfig),
    Vae(VaeConfig),
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let given = serde_json::Value::deserialize(deserializer)?;
        Self::from_fields(&given).map_err(serde::de::Error::custom)
    }
}

impl ModelConfig {
    /// The family named in `given`, its defaults overridden by the other fields of `given`.
    pub fn from_fields(given: &serde_json::Value) -> Result<Self, String> {
        let fields = given
            .as_object()
            .ok_or("the model must be a table of fields")?;
        let family = fields
            .get("family")
            .and_then(|f| f.as_str())
            .ok_or("the model needs a family (dcgan, mlp or vae)")?;
        let defaults = Self::default_for(family)
            .ok_or_else(|| format!("unknown model family {family:?} (dcgan, mlp or vae)"))?;
        let mut value = serde_json::to_value(defaults).map_err(|e| e.to_string())?;
        let complete = value.as_object_mut().expect("a config is a table");
        for (key, field) in fields {
            if !complete.contains_key(key) {
                return Err(format!("unknown field model.{key} for family {family}"));
            }
            complete.insert(key.clone(), field.clone());
        }
        let complete: CompleteModelConfig =
            serde_json::from_value(value).map_err(|e| e.to_string())?;
        Ok(match complete {
            CompleteModelConfig::Dcgan(c) => Self::Dcgan(c),
            CompleteModelConfig::Mlp(c) => Self::Mlp(c),
            CompleteModelConfig::Vae(c) => Self::Vae(c),
        })
    }
}

/// The family names, for the CLI and error messages.
pub const FAMILIES: [&str; 3] = ["dcgan", "mlp", "vae"];

/// Which value range a generator's raw output lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputRange {
    /// tanh output, the GAN convention.
    MinusOneToOne,
    /// sigmoid output, the VAE's.
    ZeroToOne,
}

impl ModelConfig {
    /// The default configuration of a family (64x64 RGB).
    pub fn default_for(family: &str) -> Option<Self> {
        match family {
            "dcgan" => Some(Self::Dcgan(DcganConfig::new())),
            "mlp" => Some(Self::Mlp(MlpConfig::new())),
            "vae" => Some(Self::Vae(VaeConfig::new())),
            _ => None,
        }
    }

    /// This model with the discriminator options of `other` (same family): a run that
    /// starts from a trained generator may train a discriminator of another kind (e.g. one
    /// without batch norm for R1). Other families' options are left as they are.
    pub fn with_discriminator_of(&self, other: &ModelConfig) -> ModelConfig {
        match (self, other) {
            (Self::Dcgan(c), Self::Dcgan(o)) => Self::Dcgan(DcganConfig {
                d_width: o.d_width,
                d_dropout: o.d_dropout,
                d_batch_norm: o.d_batch_norm,
                ..c.clone()
            }),
            (Self::Mlp(c), Self::Mlp(o)) => Self::Mlp(MlpConfig {
                d_hidden: o.d_hidden.clone(),
                d_dropout: o.d_dropout,
                ..c.clone()
            }),
            _ => self.clone(),
        }
    }

    pub fn family(&self) -> &'static str {
        match self {
            Self::Dcgan(_) => "dcgan",
            Self::Mlp(_) => "mlp",
            Self::Vae(_) => "vae",
        }
    }

    pub fn latent_dim(&self) -> usize {
        match self {
            Self::Dcgan(c) => c.latent_dim,
            Self::Mlp(c) => c.latent_dim,
            Self::Vae(c) => c.latent_dim,
        }
    }

    pub fn image_size(&self) -> usize {
        match self {
            Self::Dcgan(c) => c.image_size,
            Self::Mlp(c) => c.image_size,
            Self::Vae(c) => c.image_size,
        }
    }

    /// Checks the numbers a person could get wrong in a config file, so that building the
    /// network never panics on them.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, value: usize| match value {
            0 => Err(format!("{name} must be at least 1")),
            _ => Ok(()),
        };
        let probability = |name: &str, p: f64| match (0.0..1.0).contains(&p) {
            true => Ok(()),
            false => Err(format!("{name} must be in [0, 1), not {p}")),
        };
        match self {
            Self::Dcgan(c) => {
                c.resolution_steps()?;
                positive("latent_dim", c.latent_dim)?;
                positive("g_width", c.g_width)?;
                positive("d_width", c.d_width)?;
                positive("channels", c.channels)?;
                probability("d_dropout", c.d_dropout)
            }
            Self::Mlp(c) => {
                positive("latent_dim", c.latent_dim)?;
                positive("image_size", c.image_size)?;
                positive("channels", c.channels)?;
                for &w in c.g_hidden.iter().chain(&c.d_hidden) {
                    positive("hidden width", w)?;
                }
                probability("g_dropout", c.g_dropout)?;
                probability("d_dropout", c.d_dropout)
            }
            Self::Vae(c) => {
                c.resolution_steps()?;
                positive("latent_dim", c.latent_dim)?;
                positive("width", c.width)?;
                positive("channels", c.channels)
            }
        }
    }

    /// A freshly initialised generator (for a VAE, its decoder).
    pub fn init_generator(&self, device: &Device) -> Generator {
        match self {
            Self::Dcgan(c) => Generator::Dcgan(c.init_generator(device)),
            Self::Mlp(c) => Generator::Mlp(c.init_generator(device)),
            Self::Vae(c) => Generator::Vae(c.init_decoder(device)),
        }
    }
}

impl ModelConfig {
    /// A freshly initialised discriminator (critic); a VAE has none.
    pub fn init_discriminator(&self, device: &Device) -> Option<Discriminator> {
        match self {
            Self::Dcgan(c) => Some(Discriminator::Dcgan(c.init_discriminator(device))),
            Self::Mlp(c) => Some(Discriminator::Mlp(c.init_discriminator(device))),
            Self::Vae(_) => None,
        }
    }

    /// Weight layers of the generator (FreezeG can keep all but one fixed); the VAE's
    /// decoder is not a GAN generator and has none to freeze.
    pub fn generator_layers(&self) -> usize {
        match self {
            Self::Dcgan(c) => c.resolution_steps().map_or(0, |steps| steps + 1),
            Self::Mlp(c) => c.g_hidden.len() + 1,
            Self::Vae(_) => 0,
        }
    }

    /// Weight layers of the discriminator, image side first (0 for a VAE).
    pub fn discriminator_layers(&self) -> usize {
        match self {
            Self::Dcgan(c) => c.resolution_steps().map_or(0, |steps| steps + 1),
            Self::Mlp(c) => c.d_hidden.len() + 1,
            Self::Vae(_) => 0,
        }
    }

    /// Why this discriminator cannot be a WGAN-GP critic, if it cannot: the penalty is taken
    /// per image at points between real and fake, which batch norm (it mixes the batch) and
    /// dropout (random per call) break.
    pub fn gradient_penalty_problem(&self) -> Option<String> {
        match self {
            Self::Dcgan(c) if c.d_batch_norm => {
                Some("a gradient penalty (WGAN-GP) needs a discriminator without batch norm: set d_batch_norm = false".into())
            }
            _ => self.r1_problem(),
        }
    }

    /// Why R1 cannot be taken on this discriminator, if it cannot. Batch norm is allowed: R1
    /// takes D's input gradient with the batch's statistics held fixed (`input_gradient`).
    pub fn r1_problem(&self) -> Option<String> {
        let dropout = match self {
            Self::Dcgan(c) => c.d_dropout,
            Self::Mlp(c) => c.d_dropout,
            Self::Vae(_) => return Some("a VAE has no critic".into()),
        };
        (dropout > 0.0).then(|| {
            "a gradient penalty (WGAN-GP, R1) needs a discriminator without dropout: set d_dropout = 0".into()
        })
    }
}

/// Whichever network scores images as real or fake. Cloning is cheap.
// One per training run, never in a collection: boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Discriminator {
    Dcgan(dcgan::Discriminator),
    Mlp(mlp::Discriminator),
}

impl Discriminator {
    /// One logit (or critic score) per image: [N, C, H, W] → [N].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        match self {
            Self::Dcgan(d) => d.forward(images),
            Self::Mlp(d) => d.forward(images),
        }
    }

    /// Intermediate activations per image ([N, features] each, from the image side up).
    pub fn features(&self, images: Tensor<4>) -> Vec<Tensor<2>> {
        match self {
            Self::Dcgan(d) => d.features(images),
            Self::Mlp(d) => d.features(images),
        }
    }

    /// ∇ₓD(x), one gradient image per input image, as an ordinary differentiable computation.
    pub fn input_gradient(&self, images: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Dcgan(d) => d.input_gradient(images),
            Self::Mlp(d) => d.input_gradient(images),
        }
    }

    /// Ids of the parameters in the `count` layers nearest the image: what FreezeD keeps fixed.
    pub fn lower_layer_ids(&self, count: usize) -> Vec<ParamId> {
        let mut ids = ParamIds::default();
        match self {
            Self::Dcgan(d) => {
                if count > 0 {
                    ids.inspect(&d.from_rgb);
                }
                for block in d.blocks.iter().take(count.saturating_sub(1)) {
                    ids.inspect(block);
                }
            }
            Self::Mlp(d) => d.hidden.iter().take(count).for_each(|l| ids.inspect(l)),
        }
        ids.0.into_iter().map(ParamId::from).collect()
    }

    pub fn parameter_count(&self) -> usize {
        match self {
            Self::Dcgan(d) => parameter_count(d),
            Self::Mlp(d) => parameter_count(d),
        }
    }
}

/// Something done to a module of any type: lets code that works on burn modules generically
/// (optimizer steps, weight averaging, clipping) run on whichever network a family holds.
pub trait ModuleTransform {
    fn apply<M: Module>(&mut self, module: M) -> M;
}

/// Something read from a module of any type (parameter ids, tensors for a file).
pub trait ModuleInspect {
    fn inspect<M: Module>(&mut self, module: &M);
}

/// Stops tracking every parameter of a copy. burn's `no_grad` would untrack the original too
/// while a parameter is still lazy (a clone shares its pending initialisation), so each one is
/// initialised first, by `Param::map`.
struct Untracked;

impl ModuleTransform for Untracked {
    fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
}

impl ModuleMapper for Untracked {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| tensor.set_require_grad(false))
    }
}

/// The ids of a module's tensors, in visiting order. Optimizer state is keyed by these, so a
/// resumed run gives its freshly built networks the ids they had when the state was saved.
#[derive(Default)]
pub struct ParamIds(pub Vec<u64>);

impl ModuleInspect for ParamIds {
    fn inspect<M: Module>(&mut self, module: &M) {
        module.visit(self);
    }
}

impl ModuleVisitor for ParamIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id.val());
    }
}

impl Generator {
    pub fn transform(self, t: &mut impl ModuleTransform) -> Self {
        match self {
            Self::Dcgan(g) => Self::Dcgan(t.apply(g)),
            Self::Mlp(g) => Self::Mlp(t.apply(g)),
            Self::Vae(d) => Self::Vae(t.apply(d)),
        }
    }

    pub fn inspect(&self, i: &mut impl ModuleInspect) {
        match self {
            Self::Dcgan(g) => i.inspect(g),
            Self::Mlp(g) => i.inspect(g),
            Self::Vae(d) => i.inspect(d),
        }
    }

    /// The same network on its (autodiff) device with no parameter tracked and batch norm on
    /// running statistics: gradients flow through it to its input only (latent inversion).
    pub fn frozen(&self) -> Self {
        match self {
            Self::Dcgan(g) => Self::Dcgan(g.clone().freeze()),
            Self::Mlp(g) => Self::Mlp(g.clone().freeze()),
            Self::Vae(d) => Self::Vae(d.clone().freeze()),
        }
    }

    /// The same network with no parameter tracked but still training (batch-norm statistics
    /// from the batch, updating the shared running ones): a forward pass that records no
    /// graph, for fakes that only D's update sees.
    pub fn untracked(&self) -> Self {
        self.clone().transform(&mut Untracked)
    }

    /// Ids of the parameters in the `count` layers nearest the latent: what FreezeG keeps
    /// fixed (the coarse layout; the layers nearer the pixels learn the new style).
    pub fn upper_layer_ids(&self, count: usize) -> Vec<ParamId> {
        let mut ids = ParamIds::default();
        match self {
            Self::Dcgan(g) => g.blocks.iter().take(count).for_each(|b| ids.inspect(b)),
            Self::Mlp(g) => g.hidden.iter().take(count).for_each(|l| ids.inspect(l)),
            Self::Vae(_) => {}
        }
        ids.0.into_iter().map(ParamId::from).collect()
    }

    /// An inference copy: plain device, batch norm on running statistics, no dropout.
    pub fn valid(&self) -> Self {
        match self {
            Self::Dcgan(g) => Self::Dcgan(g.valid()),
            Self::Mlp(g) => Self::Mlp(g.valid()),
            Self::Vae(d) => Self::Vae(d.valid()),
        }
    }
}

impl Discriminator {
    /// The same network on its (autodiff) device with no parameter tracked and batch norm on
    /// running statistics: gradients flow through it to its input only.
    pub fn frozen(&self) -> Self {
        match self {
            Self::Dcgan(d) => Self::Dcgan(d.clone().freeze()),
            Self::Mlp(d) => Self::Mlp(d.clone().freeze()),
        }
    }

    /// The same network with no parameter tracked but still training (batch statistics,
    /// dropout, the shared running statistics updated): gradients reach its input, and the
    /// backward pass skips its weight gradients, which G's update does not use.
    pub fn untracked(&self) -> Self {
        self.clone().transform(&mut Untracked)
    }

    pub fn transform(self, t: &mut impl ModuleTransform) -> Self {
        match self {
            Self::Dcgan(d) => Self::Dcgan(t.apply(d)),
            Self::Mlp(d) => Self::Mlp(t.apply(d)),
        }
    }

    pub fn inspect(&self, i: &mut impl ModuleInspect) {
        match self {
            Self::Dcgan(d) => i.inspect(d),
            Self::Mlp(d) => i.inspect(d),
        }
    }

    pub fn valid(&self) -> Self {
        match self {
            Self::Dcgan(d) => Self::Dcgan(d.valid()),
            Self::Mlp(d) => Self::Mlp(d.valid()),
        }
    }
}

/// The derivative of LeakyReLU at `a`, held constant (no gradient flows into the mask).
pub(crate) fn leaky_relu_slope<const D: usize>(a: Tensor<D>, slope: f64) -> Tensor<D> {
    let a = a.detach();
    a.ones_like().mask_fill(a.lower_equal_elem(0.0), slope)
}

/// Trainable parameters, as PyTorch's `parameters()` counts them: burn's `num_params` also
/// counts batch-norm running statistics, which are buffers, not parameters.
pub fn parameter_count<M: Module>(module: &M) -> usize {
    let is_buffer = |name: &str| name.ends_with("running_mean") || name.ends_with("running_var");
    module
        .collect(None, None, false)
        .iter()
        .filter(|t| !is_buffer(&t.name))
        .map(|t| t.shape.num_elements())
        .sum()
}

/// Whichever network maps latent vectors to images. Cloning is cheap (tensors are shared).
#[derive(Clone, Debug)]
pub enum Generator {
    Dcgan(dcgan::Generator),
    Mlp(mlp::Generator),
    Vae(vae::Decoder),
}

impl Generator {
    pub fn latent_dim(&self) -> usize {
        match self {
            Self::Dcgan(g) => g.latent_dim(),
            Self::Mlp(g) => g.latent_dim(),
            Self::Vae(d) => d.latent_dim(),
        }
    }

    pub fn parameter_count(&self) -> usize {
        match self {
            Self::Dcgan(g) => parameter_count(g),
            Self::Mlp(g) => parameter_count(g),
            Self::Vae(d) => parameter_count(d),
        }
    }

    /// Sets batch-norm running statistics to the statistics of the network's own activations
    /// on one batch of seeded latents. Untrained DCGAN weights (N(0, 0.02)) shrink activations
    /// layer after layer, so with the initial statistics (mean 0, variance 1) an untrained
    /// generator draws flat grey; calibrated, it draws the random textures its weights encode.
    /// Needs the generator on an autodiff device (burn's batch norm uses batch statistics only
    /// there).
    pub fn calibrate_batch_norm(&mut self, batch: usize) {
        let device = self.device();
        assert!(
            device.is_autodiff(),
            "batch-norm calibration needs an autodiff device"
        );
        // Momentum 1: the running statistics become this batch's, exactly.
        let previous: Vec<f64> = self
            .batch_norms()
            .into_iter()
            .map(|n| std::mem::replace(&mut n.momentum, 1.0))
            .collect();
        let dim = self.latent_dim();
        let values = crate::latent::latents(u64::MAX, 0, batch, dim);
        let z = Tensor::from_data(TensorData::new(values, [batch, dim]), &device);
        let _ = self.forward(z);
        for (norm, momentum) in self.batch_norms().into_iter().zip(previous) {
            norm.momentum = momentum;
            // burn keeps a forward pass's update pending until the next read with sync;
            // without this the file would get the statistics from before calibration.
            let _ = (
                norm.running_mean.value_sync(),
                norm.running_var.value_sync(),
            );
        }
    }

    fn batch_norms(&mut self) -> Vec<&mut BatchNorm> {
        match self {
            Self::Dcgan(g) => g.blocks.iter_mut().map(|b| &mut b.norm).collect(),
            Self::Vae(d) => d.blocks.iter_mut().map(|b| &mut b.norm).collect(),
            Self::Mlp(_) => Vec::new(),
        }
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        match self {
            Self::Dcgan(g) => g.to_rgb.weight.device(),
            Self::Mlp(g) => g.to_pixels.weight.device(),
            Self::Vae(d) => d.to_rgb.weight.device(),
        }
    }

    /// The network's own output: [-1, 1] for GANs, [0, 1] for the VAE.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        match self {
            Self::Dcgan(g) => g.forward(z),
            Self::Mlp(g) => g.forward(z),
            Self::Vae(d) => d.forward(z),
        }
    }

    pub fn output_range(&self) -> OutputRange {
        match self {
            Self::Vae(_) => OutputRange::ZeroToOne,
            _ => OutputRange::MinusOneToOne,
        }
    }

    /// Images in [0, 1], whatever the family.
    pub fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        let raw = self.forward(z);
        match self.output_range() {
            OutputRange::MinusOneToOne => ((raw + 1.0) * 0.5).clamp(0.0, 1.0),
            OutputRange::ZeroToOne => raw.clamp(0.0, 1.0),
        }
    }
}
