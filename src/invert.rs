//! Finding a picture in a model's latent space: the latent whose portrait is closest to it.
//! Adam on the latent through the frozen generator, from several random starts at once (one
//! batch), the best kept. The loss sees faces and not only pixels: the mean squared pixel
//! error, plus, when the model's discriminator is at hand, the distance between its
//! activations for both pictures (each layer scaled by the target's own energy), plus a small
//! pull of ‖z‖²/dim towards 1, where a Gaussian prior's mass lies, so the latent stays one the
//! generator knows. A latent found in one model draws the same person in every model
//! fine-tuned from it. [`tune`] then fits the generator itself to that one picture (pivotal
//! tuning). Shared by the CLI (`retrato invert`) and, step by step, the page.

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::model::{Discriminator, Generator, OutputRange};
use crate::sample::seeded_latents;
use crate::train::params::{OptimizerStep, TrainWeightsOnly};

/// How the search runs.
#[derive(Clone, Debug, PartialEq)]
pub struct InvertOptions {
    /// Adam steps.
    pub steps: usize,
    /// Random starting latents optimised together; the best one wins.
    pub starts: usize,
    pub learning_rate: f64,
    /// Weight of the discriminator-feature distance beside the pixel error.
    pub feature_weight: f64,
    /// Weight of the pull of ‖z‖²/dim towards 1.
    pub prior_weight: f64,
    /// Seed of the starting latents (portraits 0..starts of this seed).
    pub seed: u64,
}

impl Default for InvertOptions {
    fn default() -> Self {
        Self {
            steps: 300,
            starts: 4,
            learning_rate: 0.05,
            feature_weight: 0.5,
            prior_weight: 0.01,
            seed: 0,
        }
    }
}

/// The search's trainable part: one latent per start.
#[derive(Module, Debug)]
struct Latents {
    z: Param<Tensor<2>>,
}

/// A search in progress: call [`Inverter::step`] until done, then read the best latent.
pub struct Inverter {
    generator: Generator,
    discriminator: Option<Discriminator>,
    /// The target in the generator's output range, repeated once per start.
    target: Tensor<4>,
    /// D's activations of the target and each layer's mean energy ([1], kept on the device:
    /// the page's WebGPU build cannot read a value back synchronously).
    target_features: Vec<(Tensor<2>, Tensor<1>)>,
    latents: Latents,
    optimizer: ModuleOptimizer,
    options: InvertOptions,
    /// Steps done.
    pub step: usize,
    /// Each start's reconstruction loss (pixels + features, without the prior) at the last step.
    losses: Option<Tensor<1>>,
}

impl Inverter {
    /// A search for `target` ([1, C, H, W] in [0, 1], on the generator's device, which must be
    /// an autodiff device) in `generator`'s latent space, with `discriminator`'s features in
    /// the loss when given (`feature_weight` > 0).
    pub fn new(
        generator: &Generator,
        discriminator: Option<&Discriminator>,
        target: Tensor<4>,
        options: InvertOptions,
    ) -> Result<Self, String> {
        let device = generator.device();
        if !device.is_autodiff() {
            return Err("inversion needs the generator on an autodiff device".into());
        }
        if options.starts == 0 || options.steps == 0 {
            return Err("inversion needs at least one start and one step".into());
        }
        let generator = generator.frozen();
        let starts = options.starts;
        let z = seeded_latents(&generator, options.seed, 0, starts, &device);
        let drawn = generator.forward(z.clone()).dims();
        let [n, c, h, w] = target.dims();
        if n != 1 || [c, h, w] != drawn[1..] {
            return Err(format!(
                "the picture is {c}x{h}x{w} but the model draws {}x{}x{}",
                drawn[1], drawn[2], drawn[3]
            ));
        }
        let target = match generator.output_range() {
            OutputRange::MinusOneToOne => target * 2.0 - 1.0,
            OutputRange::ZeroToOne => target,
        }
        .repeat_dim(0, starts)
        .detach();
        let discriminator = discriminator
            .filter(|_| options.feature_weight > 0.0)
            .map(Discriminator::frozen);
        let target_features = match &discriminator {
            Some(d) => d
                .features(target.clone())
                .into_iter()
                .map(|f| {
                    let f = f.detach();
                    let energy = f.clone().powi_scalar(2).mean().clamp_min(1e-8);
                    (f, energy)
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Self {
            generator,
            discriminator,
            target,
            target_features,
            latents: Latents {
                z: Param::from_tensor(z),
            },
            optimizer: AdamConfig::new().init(),
            options,
            step: 0,
            losses: None,
        })
    }

    pub fn options(&self) -> &InvertOptions {
        &self.options
    }

    /// Whether every step has run.
    pub fn done(&self) -> bool {
        self.step >= self.options.steps
    }

    /// One Adam step on every start's latent.
    pub fn step(&mut self) {
        let starts = self.options.starts;
        let z = self.latents.z.val();
        let images = self.generator.forward(z.clone());
        let per_start = |t: Tensor<2>| t.mean_dim(1).reshape([starts]);
        let diff = images.clone() - self.target.clone();
        let mut loss = per_start(diff.powi_scalar(2).flatten(1, 3));
        if let Some(d) = &self.discriminator {
            let layers = self.target_features.len() as f64;
            let weight = self.options.feature_weight / layers;
            for (f, (target, energy)) in d.features(images).into_iter().zip(&self.target_features) {
                let distance = per_start((f - target.clone()).powi_scalar(2));
                loss = loss + distance / energy.clone() * weight;
            }
        }
        let norms = per_start(z.powi_scalar(2));
        let prior = (norms - 1.0).powi_scalar(2) * self.options.prior_weight;
        let gradients = (loss.clone() + prior).sum().backward();
        let gradients = GradientsParams::from_grads(gradients, &self.latents);
        let latents = self.latents.clone();
        self.latents = self
            .optimizer
            .step(self.options.learning_rate, latents, gradients);
        self.losses = Some(loss.detach());
        self.step += 1;
    }

    /// The latents now ([starts, dim], untracked) and each start's loss at the last step.
    pub fn state(&self) -> (Tensor<2>, Option<Tensor<1>>) {
        (self.latents.z.val().detach(), self.losses.clone())
    }
}

/// What a finished search found.
#[derive(Clone, Debug)]
pub struct Inversion {
    /// The best start's latent (dim values).
    pub latent: Vec<f32>,
    /// Its loss at the last step (pixels + features).
    pub loss: f64,
}

/// Runs every step, calling `progress(step)` after each; returns the best start's latent.
#[cfg(not(target_arch = "wasm32"))]
pub fn invert(mut inverter: Inverter, progress: &mut dyn FnMut(usize)) -> Inversion {
    while !inverter.done() {
        inverter.step();
        progress(inverter.step);
    }
    let (z, losses) = inverter.state();
    let read = |t: Tensor<1>| -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec()
            .expect("f32 after convert")
    };
    best_start(
        &read(z.flatten(0, 1)),
        &read(losses.expect("at least one step ran")),
    )
}

/// The start with the lowest loss, from the latents ([starts × dim], row-major) and each
/// start's loss, as [`Inverter::state`] gives them once read back (the page reads them
/// asynchronously).
pub fn best_start(latents: &[f32], losses: &[f32]) -> Inversion {
    let best = (0..losses.len())
        .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
        .expect("at least one start");
    let dim = latents.len() / losses.len();
    Inversion {
        latent: latents[best * dim..(best + 1) * dim].to_vec(),
        loss: losses[best] as f64,
    }
}

/// Pivotal tuning (Roich et al. 2022): after the search, a few steps on the generator's own
/// weights so that the found latent draws the picture more exactly, while a locality term keeps
/// the portraits of other latents where they were.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneOptions {
    pub steps: usize,
    pub learning_rate: f64,
    /// Weight of the locality term: pixel distance of `anchors` random latents' portraits to
    /// the untuned generator's.
    pub locality_weight: f64,
    pub anchors: usize,
    pub seed: u64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        Self {
            steps: 100,
            learning_rate: 3e-4,
            locality_weight: 1.0,
            anchors: 4,
            seed: 1,
        }
    }
}

/// `generator` (on an autodiff device) tuned so that `latent` ([1, dim]) draws `target`
/// ([1, C, H, W] in [0, 1]) more exactly; batch norm stays on its running statistics.
pub fn tune(
    generator: &Generator,
    latent: Tensor<2>,
    target: Tensor<4>,
    options: &TuneOptions,
) -> Generator {
    let device = generator.device();
    let original = generator.frozen();
    let target = match generator.output_range() {
        OutputRange::MinusOneToOne => target * 2.0 - 1.0,
        OutputRange::ZeroToOne => target,
    }
    .detach();
    let mut tuned = generator
        .frozen()
        .transform(&mut TrainWeightsOnly::default());
    let mut optimizer = AdamConfig::new().init();
    for step in 0..options.steps {
        let drawn = tuned.forward(latent.clone());
        let mut loss = (drawn - target.clone()).powi_scalar(2).mean();
        if options.anchors > 0 && options.locality_weight > 0.0 {
            let first = (step * options.anchors) as u64;
            let anchors = seeded_latents(&original, options.seed, first, options.anchors, &device);
            let before = original.forward(anchors.clone()).detach();
            let locality = (tuned.forward(anchors) - before).powi_scalar(2).mean();
            loss = loss + locality * options.locality_weight;
        }
        let mut update = OptimizerStep {
            optimizer: &mut optimizer,
            learning_rate: options.learning_rate,
            gradients: Some(loss.backward()),
            frozen: &[],
            ranks: None,
        };
        tuned = tuned.transform(&mut update);
    }
    tuned.frozen()
}

/// Peak signal-to-noise ratio of two images in [0, 1], in dB (higher is closer).
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    10.0 * (1.0 / mse.max(1e-12)).log10()
}
