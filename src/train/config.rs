//! What a training run is: the model, the algorithm and its hyperparameters, and how the run
//! saves its work. One TOML file per system in `configs/`; any key can be overridden.

use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;

/// The whole recipe of a run, as stored in its checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainOptions,
    #[serde(default)]
    pub run: RunOptions,
}

/// The training algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Non-saturating GAN with binary cross-entropy (DCGAN; reports 001, 003, 004).
    Bce,
    /// Wasserstein GAN with weight clipping (Arjovsky et al. 2017; report 001).
    WganClip,
    /// Wasserstein GAN with gradient penalty (Gulrajani et al. 2017; report 000).
    WganGp,
    /// Variational autoencoder: reconstruction + β·KL (report 001).
    Vae,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Rmsprop,
}

/// VAE reconstruction term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reconstruction {
    /// Sum of squared errors per image.
    Mse,
    /// Sum of per-pixel binary cross-entropies per image (Keras' VAE example).
    Bce,
}

/// DiffAugment transforms (Zhao et al. 2020), applied to real and fake images alike, and
/// ADA's geometric group (Karras et al. 2020), each transform of it with probability
/// `geometric_p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    Color,
    Translation,
    Cutout,
    Geometric,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    pub objective: Objective,
    pub batch_size: usize,
    /// Passes over the data; `--max-minutes` may stop earlier.
    pub epochs: usize,
    pub optimizer: OptimizerKind,
    pub lr_g: f64,
    pub lr_d: f64,
    /// Linear learning-rate decay, for the last stretch of a long run: from step
    /// `lr_decay_start` both learning rates fall linearly, reaching `lr_decay_final` times
    /// their value at step `lr_decay_end`, and stay there. `lr_decay_end = 0` keeps them
    /// constant. A function of the step, so a resumed run continues the same schedule.
    pub lr_decay_start: u64,
    pub lr_decay_end: u64,
    pub lr_decay_final: f64,
    /// Adam's β1 (DCGAN: 0.5) and β2; RMSProp uses `rmsprop_alpha` instead.
    pub beta1: f64,
    pub beta2: f64,
    pub rmsprop_alpha: f64,
    /// The generator is updated once every `n_critic` iterations (WGAN: 5).
    pub n_critic: usize,
    /// The discriminator is updated once every `d_every` iterations (report 004: 5).
    pub d_every: usize,
    /// One-sided label smoothing: real targets become `1 - label_smoothing`.
    pub label_smoothing: f64,
    /// WGAN weight clipping bound.
    pub clip: f64,
    /// WGAN-GP penalty weight λ.
    pub gp_lambda: f64,
    /// R1 penalty weight γ (Mescheder et al. 2018): γ/2·E‖∇ₓD(x)‖² on real images keeps D
    /// smooth where the data is, which lets a discriminator without batch norm train stably
    /// and keeps one that overfits a few hundred pictures from sharpening on them. 0 turns it
    /// off; not with dropout in D; with batch norm, the batch's statistics are held fixed.
    pub r1_gamma: f64,
    /// Lazy regularisation (StyleGAN2): the R1 term every this many D updates, scaled by it.
    pub r1_every: usize,
    /// LeCam regularisation weight λ (Tseng et al. 2021, "Regularizing Generative Adversarial
    /// Networks under Limited Data"): D's outputs on real images are pulled towards the moving
    /// average of its outputs on fakes and vice versa, so a discriminator trained on a few
    /// hundred pictures cannot drive them apart. 0 turns it off (the paper: 0.1–0.3).
    pub lecam_weight: f64,
    /// Decay of LeCam's moving averages of D's outputs (the paper: 0.99).
    pub lecam_decay: f64,
    pub reconstruction: Reconstruction,
    /// Weight of the KL term (β-VAE; 1 is the plain VAE).
    pub kl_weight: f64,
    /// Decay of the generator's exponential moving average; 0 turns it off.
    pub ema_decay: f64,
    /// Ramp the average's decay up from 0 over the first steps, so that a random start does
    /// not linger in it. A fine-tuning run starts from a trained generator and turns it off.
    pub ema_warmup: bool,
    /// FreezeD (Mo et al. 2020): the discriminator's first `freeze_d` layers (from the image
    /// side) keep their weights. For fine-tuning a pretrained model on few images.
    pub freeze_d: usize,
    /// FreezeG: the generator's first `freeze_g` layers (from the latent side) keep their
    /// weights, so a transfer keeps the parent's coarse layout and learns the new style in
    /// the layers nearer the pixels.
    pub freeze_g: usize,
    pub augment: Vec<Augment>,
    /// Probability of each of the geometric transforms (`augment = ["geometric", ...]`) per
    /// image. ADA's finding: below ~0.8 they do not leak into the generated images.
    pub geometric_p: f64,
    /// ADA's adaptive augmentation: above 0, `geometric_p` is only where the probability
    /// starts; after every D update it moves towards keeping E[sign D(real)] (how sure D is
    /// of the real images, ADA's overfitting measure) at this target (ADA: 0.6).
    pub ada_target: f64,
    /// Images for the adaptive probability to move by 1 (ADA: 500k; short few-shot runs
    /// need it faster).
    pub ada_images: f64,
    /// Random horizontal flips of the real images.
    pub flip: bool,
    pub seed: u64,
}

impl TrainOptions {
    /// What both learning rates are multiplied by at `step` (the linear decay; 1 without it).
    pub fn lr_factor(&self, step: u64) -> f64 {
        if self.lr_decay_end == 0 || step <= self.lr_decay_start {
            return 1.0;
        }
        let span = (self.lr_decay_end - self.lr_decay_start) as f64;
        let done = ((step - self.lr_decay_start) as f64 / span).min(1.0);
        1.0 - done * (1.0 - self.lr_decay_final)
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            objective: Objective::Bce,
            batch_size: 64,
            epochs: 25,
            optimizer: OptimizerKind::Adam,
            lr_g: 2e-4,
            lr_d: 2e-4,
            lr_decay_start: 0,
            lr_decay_end: 0,
            lr_decay_final: 0.0,
            beta1: 0.5,
            beta2: 0.999,
            rmsprop_alpha: 0.9,
            n_critic: 1,
            d_every: 1,
            label_smoothing: 0.0,
            clip: 0.01,
            gp_lambda: 10.0,
            r1_gamma: 0.0,
            r1_every: 16,
            lecam_weight: 0.0,
            lecam_decay: 0.99,
            reconstruction: Reconstruction::Mse,
            kl_weight: 1.0,
            ema_decay: 0.0,
            ema_warmup: true,
            freeze_d: 0,
            freeze_g: 0,
            augment: Vec::new(),
            geometric_p: 0.25,
            ada_target: 0.0,
            ada_images: 20_000.0,
            flip: false,
            seed: 0,
        }
    }
}

/// What to do when a loss turns NaN/Inf or explodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDivergence {
    /// Reload the last checkpoint and continue with lower learning rates.
    Rollback,
    /// Stop, keeping the last checkpoint.
    Stop,
}

/// Where the shared data keeps the FID network, relative to the repository.
pub const DEFAULT_INCEPTION: &str =
    "../shared/data/fid_inception/pt_inception_fid_2015-12-05_f16.safetensors";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// Save a checkpoint at least this often (wall-clock minutes).
    pub checkpoint_minutes: f64,
    /// ... and at the end of every this many epochs.
    pub checkpoint_epochs: usize,
    /// Checkpoints kept on disk (the newest ones).
    pub keep_checkpoints: usize,
    /// A sample grid every this many epochs.
    pub sample_epochs: usize,
    /// Portraits in each sample grid (fixed latents, so grids are comparable).
    pub sample_count: usize,
    pub on_divergence: OnDivergence,
    /// A loss whose magnitude passes this counts as diverged.
    pub divergence_threshold: f64,
    /// Learning rates are multiplied by this after each rollback.
    pub lr_backoff: f64,
    /// Rollbacks allowed before the run stops.
    pub max_rollbacks: usize,
    /// FID against `fid_reference` every this many epochs and at the end (0: never). The
    /// best one's checkpoint is kept as checkpoints/best-fid.safetensors.
    pub fid_epochs: usize,
    /// Held-out real images for FID (uint8 .npy, folder or archive), relative to where
    /// `retrato train` runs.
    pub fid_reference: String,
    /// Portraits (and reference images) per FID: 2,000 matches `eval fid`'s default.
    pub fid_images: usize,
    /// The FID Inception weights.
    pub fid_inception: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            checkpoint_minutes: 10.0,
            checkpoint_epochs: 1,
            keep_checkpoints: 3,
            sample_epochs: 1,
            sample_count: 64,
            on_divergence: OnDivergence::Rollback,
            divergence_threshold: 1e6,
            lr_backoff: 0.5,
            max_rollbacks: 3,
            fid_epochs: 0,
            fid_reference: String::new(),
            fid_images: 2000,
            fid_inception: DEFAULT_INCEPTION.to_string(),
        }
    }
}

impl TrainConfig {
    /// Checks what a person could get wrong, so that training never panics on a config.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        let t = &self.train;
        let is_vae = matches!(self.model, ModelConfig::Vae(_));
        match (t.objective, is_vae) {
            (Objective::Vae, false) => {
                return Err(format!(
                    "objective \"vae\" needs model family \"vae\", not \"{}\"",
                    self.model.family()
                ));
            }
            (Objective::Vae, true) => {}
            (_, true) => return Err("a VAE model trains with objective = \"vae\"".into()),
            (Objective::WganGp, false) => {
                if let Some(problem) = self.model.gradient_penalty_problem() {
                    return Err(problem);
                }
            }
            _ => {}
        }
        if t.r1_gamma != 0.0 {
            if !(t.r1_gamma.is_finite() && t.r1_gamma > 0.0) {
                return Err(format!(
                    "r1_gamma must be 0 or positive, not {}",
                    t.r1_gamma
                ));
            }
            if let Some(problem) = self.model.r1_problem() {
                return Err(format!("r1_gamma: {problem}"));
            }
        }
        if t.lecam_weight != 0.0 {
            if !(t.lecam_weight.is_finite() && t.lecam_weight > 0.0) {
                return Err(format!(
                    "lecam_weight must be 0 or positive, not {}",
                    t.lecam_weight
                ));
            }
            if t.objective == Objective::Vae {
                return Err("lecam_weight regularises a discriminator: a VAE has none".into());
            }
        }
        if !(0.0..=1.0).contains(&t.geometric_p) {
            return Err(format!(
                "geometric_p is a probability (0 to 1), not {}",
                t.geometric_p
            ));
        }
        if t.ada_target != 0.0 {
            if !(t.ada_target > 0.0 && t.ada_target < 1.0) {
                return Err(format!(
                    "ada_target is a value of E[sign D(real)] between 0 and 1 (ADA: 0.6), not {}",
                    t.ada_target
                ));
            }
            if t.objective != Objective::Bce {
                return Err(
                    "ada_target needs objective = \"bce\" (it reads the sign of D's logits)".into(),
                );
            }
            if !t.augment.contains(&Augment::Geometric) {
                return Err("ada_target adapts geometric_p: add \"geometric\" to augment".into());
            }
            if !(t.ada_images.is_finite() && t.ada_images > 0.0) {
                return Err(format!("ada_images must be positive, not {}", t.ada_images));
            }
        }
        let at_least_one = |name: &str, v: usize| match v {
            0 => Err(format!("{name} must be at least 1")),
            _ => Ok(()),
        };
        at_least_one("batch_size", t.batch_size)?;
        at_least_one("epochs", t.epochs)?;
        at_least_one("n_critic", t.n_critic)?;
        at_least_one("d_every", t.d_every)?;
        at_least_one("r1_every", t.r1_every)?;
        // FreezeD / FreezeG must leave at least one layer of the network training.
        let leaves_one_training = |name: &str, depth: usize, layers: usize, network: &str| {
            match depth > 0 && depth >= layers {
                true => Err(format!(
                    "{name} = {depth} would freeze the whole {network} ({layers} layers): at most {}",
                    layers.saturating_sub(1)
                )),
                false => Ok(()),
            }
        };
        let (d_layers, g_layers) = (
            self.model.discriminator_layers(),
            self.model.generator_layers(),
        );
        leaves_one_training("freeze_d", t.freeze_d, d_layers, "discriminator")?;
        leaves_one_training("freeze_g", t.freeze_g, g_layers, "generator")?;
        at_least_one("run.keep_checkpoints", self.run.keep_checkpoints)?;
        at_least_one("run.checkpoint_epochs", self.run.checkpoint_epochs)?;
        at_least_one("run.sample_epochs", self.run.sample_epochs)?;
        if self.run.fid_epochs > 0 {
            if self.run.fid_reference.is_empty() {
                return Err("run.fid_epochs needs run.fid_reference (held-out real images)".into());
            }
            if self.run.fid_images < 2 {
                return Err("run.fid_images must be at least 2".into());
            }
        }
        let positive = |name: &str, v: f64| match v.is_finite() && v > 0.0 {
            true => Ok(()),
            false => Err(format!("{name} must be a positive number, not {v}")),
        };
        positive("lr_g", t.lr_g)?;
        positive("lr_d", t.lr_d)?;
        positive("clip", t.clip)?;
        positive("run.checkpoint_minutes", self.run.checkpoint_minutes)?;
        positive("run.divergence_threshold", self.run.divergence_threshold)?;
        let unit = |name: &str, v: f64| match (0.0..1.0).contains(&v) {
            true => Ok(()),
            false => Err(format!("{name} must be in [0, 1), not {v}")),
        };
        unit("beta1", t.beta1)?;
        unit("beta2", t.beta2)?;
        unit("rmsprop_alpha", t.rmsprop_alpha)?;
        unit("label_smoothing", t.label_smoothing)?;
        unit("ema_decay", t.ema_decay)?;
        unit("lecam_decay", t.lecam_decay)?;
        if t.lr_decay_end > 0 {
            if t.lr_decay_end <= t.lr_decay_start {
                return Err(format!(
                    "lr_decay_end ({}) must come after lr_decay_start ({})",
                    t.lr_decay_end, t.lr_decay_start
                ));
            }
            if !(0.0..=1.0).contains(&t.lr_decay_final) {
                return Err(format!(
                    "lr_decay_final must be in [0, 1], not {}",
                    t.lr_decay_final
                ));
            }
        }
        match self.run.lr_backoff > 0.0 && self.run.lr_backoff <= 1.0 {
            true => Ok(()),
            false => Err(format!(
                "run.lr_backoff must be in (0, 1], not {}",
                self.run.lr_backoff
            )),
        }
    }

    /// Whether images are scaled to [0, 1] (VAE, sigmoid output) rather than [-1, 1] (tanh).
    pub fn unit_range(&self) -> bool {
        matches!(self.model, ModelConfig::Vae(_))
    }
}
