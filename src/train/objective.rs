//! The loss functions of the four algorithms, on logits / critic scores.

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, sigmoid};

use super::config::{Objective, Reconstruction, TrainOptions};

/// The loss terms a run's algorithm reports, in `metrics.csv` column order.
pub fn loss_names(train: &TrainOptions) -> Vec<&'static str> {
    let mut names = match train.objective {
        Objective::Bce => vec!["d_loss", "g_loss", "d_real", "d_fake"],
        Objective::WganClip => vec!["d_loss", "g_loss", "wasserstein"],
        Objective::WganGp => vec!["d_loss", "g_loss", "wasserstein", "gradient_penalty"],
        Objective::Vae => vec!["loss", "reconstruction", "kl"],
    };
    if train.r1_gamma > 0.0 && train.objective != Objective::Vae {
        names.push("r1");
    }
    if train.lecam_weight > 0.0 && train.objective != Objective::Vae {
        names.push("lecam");
    }
    if train.ada_target > 0.0 {
        names.push("augment_p");
    }
    names
}

/// Binary cross-entropy of `logits` against a constant `target`, in the stable form
/// max(l, 0) − l·t + log(1 + e^−|l|) (what PyTorch's BCEWithLogitsLoss computes).
pub fn bce_with_logits(logits: Tensor<1>, target: f64) -> Tensor<1> {
    let stable = logits.clone().abs().neg().exp().log1p();
    (relu(logits.clone()) - logits * target + stable).mean()
}

/// Mean D output as a probability: how sure D is that these images are real.
pub fn mean_probability(logits: Tensor<1>) -> Tensor<1> {
    sigmoid(logits).mean()
}

/// Per-image reconstruction error, averaged over the batch.
pub fn reconstruction(kind: Reconstruction, output: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let n = output.dims()[0] as f64;
    let per_pixel = match kind {
        Reconstruction::Mse => (output - target).powi_scalar(2),
        Reconstruction::Bce => {
            // The decoder ends in a sigmoid; clamp so log never sees 0.
            let p = output.clamp(1e-6, 1.0 - 1e-6);
            (target.clone() * p.clone().log() + (target.neg() + 1.0) * (p.neg() + 1.0).log()).neg()
        }
    };
    per_pixel.sum() / n
}

/// KL(q(z|x) ‖ N(0, I)) per image, averaged over the batch.
pub fn kl_divergence(mean: Tensor<2>, log_var: Tensor<2>) -> Tensor<1> {
    let n = mean.dims()[0] as f64;
    let terms = log_var.clone() + 1.0 - mean.powi_scalar(2) - log_var.exp();
    terms.sum() * (-0.5 / n)
}

/// The R1 penalty γ/2·E[‖∇ₓD(x)‖²] at real images (Mescheder et al. 2018).
pub fn r1_penalty(gradient: Tensor<4>, gamma: f64) -> Tensor<1> {
    let squared_norms = gradient.powi_scalar(2).sum_dim(3).sum_dim(2).sum_dim(1);
    squared_norms.mean() * (gamma / 2.0)
}

/// LeCam's running averages of D's outputs with this batch's means in: [Σ real, Σ fake,
/// Σ weight] of a bias-corrected moving average (so the first batch is its own anchor).
/// The batch enters before the penalty reads them, as in the paper's code.
pub fn lecam_averages(
    averages: Tensor<1>,
    real_logits: Tensor<1>,
    fake_logits: Tensor<1>,
    decay: f64,
) -> Tensor<1> {
    let device = real_logits.device();
    let batch_means = Tensor::cat(
        vec![
            real_logits.detach().mean(),
            fake_logits.detach().mean(),
            Tensor::ones([1], &device),
        ],
        0,
    );
    (averages * decay + batch_means * (1.0 - decay)).detach()
}

/// The LeCam penalty (Tseng et al. 2021) λ·(E[relu(D(x) − ā_fake)²] + E[relu(ā_real − D(G(z)))²])
/// against the [`lecam_averages`]: D's outputs on real images are pulled towards the running
/// average of its outputs on fakes and vice versa, which bounds how far apart a
/// discriminator trained on few images can push them.
pub fn lecam_penalty(
    real_logits: Tensor<1>,
    fake_logits: Tensor<1>,
    averages: Tensor<1>,
    weight: f64,
) -> Tensor<1> {
    let total = averages.clone().slice(2..3);
    let anchor_real = averages.clone().slice(0..1) / total.clone();
    let anchor_fake = averages.slice(1..2) / total;
    let real_term = relu(real_logits - anchor_fake).powi_scalar(2).mean();
    let fake_term = relu(anchor_real - fake_logits).powi_scalar(2).mean();
    (real_term + fake_term) * weight
}

/// The WGAN-GP penalty λ·E[(‖∇ₓD(x̂)‖ − 1)²]; `gradient` is ∇ₓD at the interpolates.
pub fn gradient_penalty(gradient: Tensor<4>, lambda: f64) -> Tensor<1> {
    let norms = gradient
        .powi_scalar(2)
        .sum_dim(3)
        .sum_dim(2)
        .sum_dim(1)
        .add_scalar(1e-12)
        .sqrt();
    (norms - 1.0).powi_scalar(2).mean() * lambda
}
