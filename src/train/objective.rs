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
