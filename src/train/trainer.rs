//! One training step for every algorithm, on any autodiff device: the loop the CLI runs for
//! full training and the page runs for fine-tuning. It keeps no clock, file or progress
//! display; callers read the returned losses (synchronously natively, asynchronously in the
//! browser) and decide what to save.
//!
//! Randomness is a pure function of (seed, step): latents, augmentations and the interpolation
//! weights of the gradient penalty come from [`SplitMix64`] streams, and burn's own generator
//! (dropout, the VAE's noise) is reseeded every step. A run resumed from a checkpoint
//! therefore continues exactly as if it had not stopped.

use burn::optim::{AdamConfig, ModuleOptimizer, RmsPropConfig};
use burn::tensor::{Device, Tensor, TensorData};

use super::augment::diff_augment;
use super::collective::Ranks;
use super::config::{Objective, OptimizerKind, TrainConfig};
use super::objective::{
    bce_with_logits, gradient_penalty, kl_divergence, lecam_penalty, mean_probability, r1_penalty,
    reconstruction,
};
use super::params::{Clip, MovingAverage, OptimizerStep, Values, average_gradients};
use crate::latent::{SplitMix64, latents, mix};
use crate::model::vae::Vae;
use crate::model::{Discriminator, Generator, ModelConfig};

/// The networks being trained and their optimizers.
// One per run: boxing the larger variant would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Networks {
    Gan {
        generator: Generator,
        discriminator: Discriminator,
        optimizer_g: ModuleOptimizer,
        optimizer_d: ModuleOptimizer,
    },
    Vae {
        vae: Vae,
        optimizer: ModuleOptimizer,
    },
}

/// Loss terms of one step, still on the device. Only the terms the step computed are here
/// (a step that skips the generator has no `g_loss`).
pub struct StepLosses(pub Vec<(&'static str, Tensor<1>)>);

/// Purposes of the per-step random streams, so that no two draw the same numbers.
const STREAM_LATENT_D: u64 = 1;
const STREAM_LATENT_G: u64 = 2;
const STREAM_AUGMENT: u64 = 3;
const STREAM_PENALTY: u64 = 4;
const STREAM_BURN: u64 = 5;

#[derive(Clone)]
pub struct Trainer {
    pub config: TrainConfig,
    pub networks: Networks,
    /// The generator's moving average (plain device), when `ema_decay > 0`.
    pub ema: Option<Generator>,
    /// Iterations done; each consumes one batch of real images.
    pub step: u64,
    /// Multiplies both learning rates; lowered after a divergence rollback.
    pub lr_scale: f64,
    /// ADA's adaptive probability of the geometric transforms (`ada_target > 0`), one value
    /// kept on the device: it adapts every step without a read-back.
    pub augment_p: Option<Tensor<1>>,
    /// LeCam's running averages of D's outputs, [Σ real, Σ fake, Σ weight]
    /// (`lecam_weight > 0`), on the device like `augment_p`.
    pub lecam_averages: Option<Tensor<1>>,
    /// The other ranks of a data-parallel job ([`Collective`]): this trainer sees its shard
    /// of each batch, draws its shard of the latents, and averages gradients with them.
    pub ranks: Option<Ranks>,
    device: Device,
}

/// `values` averaged over a data-parallel job's ranks (a read-back, only in such a job), so
/// that state each rank keeps for itself (ADA's probability, LeCam's averages) stays the
/// same on all.
fn job_average(values: Tensor<1>, ranks: Option<&dyn super::collective::Collective>) -> Tensor<1> {
    let Some(ranks) = ranks else { return values };
    let device = values.device();
    let mut read = values
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32");
    super::collective::average(ranks, &mut read);
    Tensor::from_floats(read.as_slice(), &device)
}

/// A fresh optimizer of the configured kind.
pub fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let t = &config.train;
    match t.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(t.beta1 as f32)
            .with_beta_2(t.beta2 as f32)
            .with_epsilon(1e-8)
            .init(),
        // Momentum-free RMSProp, as in the WGAN paper and Keras.
        OptimizerKind::Rmsprop => RmsPropConfig::new()
            .with_alpha(t.rmsprop_alpha as f32)
            .with_momentum(0.0)
            .with_epsilon(1e-7)
            .init(),
    }
}

impl Trainer {
    /// Fresh networks, initialised from the run's seed, on `device` (an autodiff device).
    pub fn new(config: TrainConfig, device: &Device) -> Result<Self, String> {
        config.validate()?;
        device.seed(mix(config.train.seed));
        let networks = match &config.model {
            ModelConfig::Vae(c) => Networks::Vae {
                vae: c.init(device),
                optimizer: optimizer(&config),
            },
            model => Networks::Gan {
                generator: model.init_generator(device),
                discriminator: model.init_discriminator(device).expect("GAN family"),
                optimizer_g: optimizer(&config),
                optimizer_d: optimizer(&config),
            },
        };
        let mut trainer = Self::from_networks(config, networks, None, 0, 1.0, device);
        if trainer.config.train.ema_decay > 0.0 {
            trainer.ema = Some(trainer.generator().valid());
        }
        Ok(trainer)
    }

    /// Puts together a trainer from saved parts (a checkpoint).
    pub fn from_networks(
        config: TrainConfig,
        networks: Networks,
        ema: Option<Generator>,
        step: u64,
        lr_scale: f64,
        device: &Device,
    ) -> Self {
        let augment_p = (config.train.ada_target > 0.0)
            .then(|| Tensor::from_floats([config.train.geometric_p as f32], device));
        let lecam_averages = (config.train.lecam_weight > 0.0).then(|| Tensor::zeros([3], device));
        Self {
            config,
            networks,
            ema,
            step,
            lr_scale,
            augment_p,
            lecam_averages,
            ranks: None,
            device: device.clone(),
        }
    }

    /// The probability of each geometric transform this step: ADA's adapted one, or the
    /// configured constant.
    pub fn geometric_p(&self) -> Tensor<1> {
        match &self.augment_p {
            Some(p) => p.clone(),
            None => Tensor::from_floats([self.config.train.geometric_p as f32], &self.device),
        }
    }

    /// ADA's update after a D step: the probability moves by `images / ada_images` up where
    /// D is surer of the real images than `ada_target`, down where less (every rank by the
    /// job's average, so that all keep the same value). Returns the new value; nothing
    /// without ADA.
    fn adapt_augmentation(&mut self, real_logits: Tensor<1>, images: usize) -> Option<Tensor<1>> {
        let p = self.augment_p.take()?;
        let t = &self.config.train;
        let overfit = job_average(real_logits.detach().sign().mean(), self.ranks.as_deref());
        let speed = (images * self.shard().1) as f64 / t.ada_images;
        let moved = p + (overfit - t.ada_target).sign() * speed;
        self.augment_p = Some(moved.clamp(0.0, 1.0).detach());
        self.augment_p.clone()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trained generator (not the average), on the training device.
    pub fn generator(&self) -> Generator {
        match &self.networks {
            Networks::Gan { generator, .. } => generator.clone(),
            Networks::Vae { vae, .. } => Generator::Vae(vae.decoder.clone()),
        }
    }

    /// The generator to sample from and export: the moving average when there is one.
    pub fn sampling_generator(&self) -> Generator {
        match &self.ema {
            Some(ema) => ema.clone(),
            None => self.generator().valid(),
        }
    }

    /// This rank's place and the number of ranks (0 of 1 outside a data-parallel job).
    pub fn shard(&self) -> (usize, usize) {
        (self.ranks.as_ref()).map_or((0, 1), |r| (r.rank(), r.size()))
    }

    /// A per-step stream; each rank has its own (rank 0's is the single process's).
    fn rng(&self, purpose: u64) -> SplitMix64 {
        let rank = self.shard().0 as u64;
        let purpose = mix(purpose) ^ rank.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SplitMix64::stream(mix(self.config.train.seed ^ purpose), self.step)
    }

    /// `count` latents: this rank's shard of the step's latents, so that N ranks of `count`
    /// draw the latents one process with N x `count` would.
    fn latents(&self, purpose: u64, count: usize) -> Tensor<2> {
        let dim = self.config.model.latent_dim();
        let seed = mix(self.config.train.seed ^ mix(purpose));
        let (rank, ranks) = self.shard();
        let first = (self.step.wrapping_mul(ranks as u64) + rank as u64).wrapping_mul(count as u64);
        let values = latents(seed, first, count, dim);
        Tensor::from_data(TensorData::new(values, [count, dim]), &self.device)
    }

    /// One iteration on a batch of real images ([N, C, H, W], in the model's value range).
    pub fn train_step(&mut self, real: Tensor<4>) -> StepLosses {
        self.device
            .seed(mix(self.config.train.seed ^ mix(STREAM_BURN)) ^ self.step);
        let losses = match self.networks {
            Networks::Gan { .. } => self.gan_step(real),
            Networks::Vae { .. } => self.vae_step(real),
        };
        self.step += 1;
        losses
    }

    fn gan_step(&mut self, real: Tensor<4>) -> StepLosses {
        let t = self.config.train.clone();
        let n = real.dims()[0];
        let update_d = self.step.is_multiple_of(t.d_every as u64);
        let update_g = (self.step + 1).is_multiple_of(t.n_critic as u64);
        let mut augment_rng = self.rng(STREAM_AUGMENT);
        let mut out = Vec::new();
        let z_d = self.latents(STREAM_LATENT_D, n);
        let z_g = self.latents(STREAM_LATENT_G, n);
        let mut penalty_rng = self.rng(STREAM_PENALTY);
        let geometric_p = self.geometric_p();
        let mut adapt_to = None;
        let mut lecam_averages = self.lecam_averages.take();
        let Networks::Gan {
            generator,
            discriminator,
            optimizer_g,
            optimizer_d,
        } = &mut self.networks
        else {
            unreachable!("gan_step on a GAN")
        };

        if update_d {
            // D's update needs no graph through G: an untracked copy records nothing.
            let fake = generator.untracked().forward(z_d);
            let real_seen = diff_augment(
                real.clone(),
                &t.augment,
                geometric_p.clone(),
                &mut augment_rng,
            );
            let fake_seen = diff_augment(fake, &t.augment, geometric_p.clone(), &mut augment_rng);
            let real_logits = discriminator.forward(real_seen.clone());
            let fake_logits = discriminator.forward(fake_seen.clone());
            adapt_to = Some(real_logits.clone());
            let lecam = lecam_averages.take().map(|averages| {
                let (real, fake) = (real_logits.clone(), fake_logits.clone());
                let averages = super::objective::lecam_averages(
                    averages,
                    real.clone(),
                    fake.clone(),
                    t.lecam_decay,
                );
                // The job's averages before the penalty reads them: N ranks as one process.
                let averages = job_average(averages, self.ranks.as_deref());
                lecam_averages = Some(averages.clone());
                lecam_penalty(real, fake, averages, t.lecam_weight)
            });
            let loss = match t.objective {
                Objective::Bce => {
                    out.push(("d_real", mean_probability(real_logits.clone()).detach()));
                    out.push(("d_fake", mean_probability(fake_logits.clone()).detach()));
                    bce_with_logits(real_logits, 1.0 - t.label_smoothing)
                        + bce_with_logits(fake_logits, 0.0)
                }
                Objective::WganClip | Objective::WganGp => {
                    let distance = real_logits.mean() - fake_logits.mean();
                    out.push(("wasserstein", distance.clone().detach()));
                    let mut loss = distance.neg();
                    if t.objective == Objective::WganGp {
                        let mix_weights = (0..n).map(|_| penalty_rng.next_open01() as f32);
                        let eps: Tensor<4> = Tensor::from_data(
                            TensorData::new(mix_weights.collect::<Vec<_>>(), [n, 1, 1, 1]),
                            &self.device,
                        );
                        let between = (real_seen.clone().detach() * eps.clone()
                            + fake_seen.detach() * (eps.neg() + 1.0))
                            .detach();
                        let gradient = discriminator.input_gradient(between);
                        let penalty = gradient_penalty(gradient, t.gp_lambda);
                        out.push(("gradient_penalty", penalty.clone().detach()));
                        loss = loss + penalty;
                    }
                    loss
                }
                Objective::Vae => unreachable!("validated"),
            };
            let loss = match lecam {
                Some(penalty) => {
                    out.push(("lecam", penalty.clone().detach()));
                    loss + penalty
                }
                None => loss,
            };
            let d_updates = self.step / t.d_every as u64;
            let loss = match t.r1_gamma > 0.0 && d_updates.is_multiple_of(t.r1_every as u64) {
                true => {
                    let gradient = discriminator.input_gradient(real_seen.detach());
                    let penalty = r1_penalty(gradient, t.r1_gamma * t.r1_every as f64);
                    out.push(("r1", penalty.clone().detach()));
                    loss + penalty
                }
                false => loss,
            };
            out.push(("d_loss", loss.clone().detach()));
            let frozen = discriminator.lower_layer_ids(t.freeze_d);
            let mut step = OptimizerStep {
                optimizer: optimizer_d,
                learning_rate: t.lr_d * self.lr_scale * t.lr_factor(self.step),
                gradients: Some(loss.backward()),
                frozen: &frozen,
                ranks: self.ranks.as_deref(),
            };
            *discriminator = discriminator.clone().transform(&mut step);
            if t.objective == Objective::WganClip {
                *discriminator = discriminator.clone().transform(&mut Clip::new(t.clip));
            }
        }

        if update_g {
            let fake = generator.forward(z_g);
            // G's update needs D's input gradients, not its weight gradients: an untracked
            // copy of D (sharing its batch-norm running statistics) skips their GEMMs.
            let critic = discriminator.untracked();
            let logits = critic.forward(diff_augment(
                fake,
                &t.augment,
                geometric_p.clone(),
                &mut augment_rng,
            ));
            let loss = match t.objective {
                Objective::Bce => bce_with_logits(logits, 1.0),
                _ => logits.mean().neg(),
            };
            out.push(("g_loss", loss.clone().detach()));
            let frozen = generator.upper_layer_ids(t.freeze_g);
            let mut step = OptimizerStep {
                optimizer: optimizer_g,
                learning_rate: t.lr_g * self.lr_scale * t.lr_factor(self.step),
                gradients: Some(loss.backward()),
                frozen: &frozen,
                ranks: self.ranks.as_deref(),
            };
            *generator = generator.clone().transform(&mut step);
            self.update_ema();
        }
        self.lecam_averages = lecam_averages;
        if let Some(p) = adapt_to.and_then(|logits| self.adapt_augmentation(logits, n)) {
            out.push(("augment_p", p));
        }
        StepLosses(out)
    }

    fn vae_step(&mut self, real: Tensor<4>) -> StepLosses {
        let t = self.config.train.clone();
        let Networks::Vae { vae, optimizer } = &mut self.networks else {
            unreachable!("vae_step on a VAE")
        };
        let (output, mean, log_var) = vae.forward(real.clone());
        let recon = reconstruction(t.reconstruction, output, real);
        let kl = kl_divergence(mean, log_var);
        let loss = recon.clone() + kl.clone() * t.kl_weight;
        let out = vec![
            ("loss", loss.clone().detach()),
            ("reconstruction", recon.detach()),
            ("kl", kl.detach()),
        ];
        let gradients = loss.backward();
        let mut grads = burn::optim::GradientsParams::from_grads(gradients, vae);
        if let Some(ranks) = self.ranks.as_deref() {
            grads = average_gradients(vae, grads, ranks);
        }
        *vae = optimizer.step(
            t.lr_g * self.lr_scale * t.lr_factor(self.step),
            vae.clone(),
            grads,
        );
        self.update_ema();
        StepLosses(out)
    }

    /// EMA, with the usual warm-up unless turned off: the effective decay grows from 0 so that
    /// early averages are not dominated by the random initialisation.
    fn update_ema(&mut self) {
        let Some(ema) = self.ema.take() else { return };
        let t = &self.config.train;
        let decay = match t.ema_warmup {
            true => t
                .ema_decay
                .min((1.0 + self.step as f64) / (10.0 + self.step as f64)),
            false => t.ema_decay,
        };
        let mut values = Values::default();
        self.generator().valid().inspect(&mut values);
        self.ema = Some(ema.transform(&mut MovingAverage::new(decay, values)));
    }
}
