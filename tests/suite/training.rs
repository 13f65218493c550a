//! The training step of every algorithm on toy faces, the exact WGAN-GP input gradient,
//! DiffAugment, and resume equivalence through a checkpoint.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use retrato::data::{Batches, Range};
use retrato::latent::SplitMix64;
use retrato::model::{Discriminator, ModelConfig};
use retrato::train::augment::diff_augment;
use retrato::train::checkpoint::{self, RunInfo};
use retrato::train::{Augment, TrainConfig, Trainer, transfer};
use retrato::weights::{ModelFile, Part};

use crate::max_abs_diff;
use crate::toy::toy_dataset;

fn device() -> Device {
    Device::flex().autodiff()
}

/// A small config of `family` (32x32) for `objective`, from JSON like a preset would give.
fn config(model: serde_json::Value, train: serde_json::Value) -> TrainConfig {
    let config: TrainConfig =
        serde_json::from_value(serde_json::json!({ "model": model, "train": train })).unwrap();
    config.validate().unwrap();
    config
}

fn small_dcgan() -> serde_json::Value {
    serde_json::json!({ "family": "dcgan", "image_size": 32, "g_width": 8, "d_width": 8, "latent_dim": 16 })
}

/// Trains `steps` steps on toy faces; returns each step's losses by name.
fn train(trainer: &mut Trainer, steps: u64) -> Vec<Vec<(&'static str, f32)>> {
    let data = toy_dataset(64, 32);
    let range = match trainer.config.unit_range() {
        true => Range::ZeroToOne,
        false => Range::MinusOneToOne,
    };
    let batches = Batches {
        count: data.count,
        batch_size: trainer.config.train.batch_size,
        seed: trainer.config.train.seed,
        flip: trainer.config.train.flip,
    };
    let mut history = Vec::new();
    for _ in 0..steps {
        let (indices, flips) = batches.at(trainer.step);
        let real = data.batch(&indices, &flips, range, trainer.device());
        let losses = trainer.train_step(real);
        history.push(
            losses
                .0
                .into_iter()
                .map(|(name, t)| (name, t.into_scalar::<f32>()))
                .collect(),
        );
    }
    history
}

fn mean_of(history: &[Vec<(&str, f32)>], name: &str) -> f32 {
    let values: Vec<f32> = history
        .iter()
        .flat_map(|step| step.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v))
        .collect();
    assert!(!values.is_empty(), "no {name} recorded");
    values.iter().sum::<f32>() / values.len() as f32
}

fn assert_finite(history: &[Vec<(&str, f32)>]) {
    for (step, losses) in history.iter().enumerate() {
        for (name, value) in losses {
            assert!(value.is_finite(), "step {step}: {name} = {value}");
        }
    }
}

#[test]
fn bce_gan_trains_and_discriminator_learns_to_tell_real_from_fake() {
    let config = config(
        small_dcgan(),
        serde_json::json!({ "batch_size": 16, "lr_d": 5e-4 }),
    );
    let mut trainer = Trainer::new(config, &device()).unwrap();
    let history = train(&mut trainer, 30);
    assert_finite(&history);
    let last = &history[20..];
    let (real, fake) = (mean_of(last, "d_real"), mean_of(last, "d_fake"));
    assert!(
        real > 0.5 && fake < 0.5,
        "D should separate real ({real}) from fake ({fake})"
    );
    assert!(mean_of(last, "g_loss") > 0.0);
}

#[test]
fn mlp_gan_with_dropout_and_d_every_trains() {
    let model = serde_json::json!({ "family": "mlp", "image_size": 32, "latent_dim": 16,
        "g_hidden": [64], "d_hidden": [64], "g_dropout": 0.3, "d_dropout": 0.3 });
    let config = config(
        model,
        serde_json::json!({ "batch_size": 16, "d_every": 2, "label_smoothing": 0.1 }),
    );
    let mut trainer = Trainer::new(config, &device()).unwrap();
    let history = train(&mut trainer, 20);
    assert_finite(&history);
    let d_steps = history
        .iter()
        .filter(|s| s.iter().any(|(n, _)| *n == "d_loss"))
        .count();
    assert_eq!(d_steps, 10, "D is updated every second step");
}

#[test]
fn wgan_clip_keeps_weights_clipped_and_critic_separates() {
    let train_options = serde_json::json!({ "objective": "wgan-clip", "optimizer": "rmsprop",
        "lr_g": 5e-5, "lr_d": 5e-4, "n_critic": 5, "batch_size": 16, "clip": 0.01 });
    let mut trainer = Trainer::new(config(small_dcgan(), train_options), &device()).unwrap();
    let history = train(&mut trainer, 30);
    assert_finite(&history);
    let g_steps = history
        .iter()
        .filter(|s| s.iter().any(|(n, _)| *n == "g_loss"))
        .count();
    assert_eq!(g_steps, 6, "G is updated once every 5 critic steps");
    assert!(
        mean_of(&history[20..], "wasserstein") > 0.0,
        "critic scores real above fake"
    );
    let retrato::train::trainer::Networks::Gan { discriminator, .. } = &trainer.networks else {
        panic!("a GAN")
    };
    let Discriminator::Dcgan(d) = discriminator else {
        panic!("dcgan")
    };
    let weights = d
        .from_rgb
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(
        weights.iter().all(|w| w.abs() <= 0.01 + 1e-7),
        "weights clipped to ±0.01"
    );
}

#[test]
fn wgan_gp_trains_with_the_exact_penalty() {
    for model in [
        serde_json::json!({ "family": "mlp", "image_size": 32, "latent_dim": 16, "g_hidden": [64], "d_hidden": [64, 32], "d_dropout": 0.0 }),
        serde_json::json!({ "family": "dcgan", "image_size": 32, "g_width": 8, "d_width": 8, "latent_dim": 16, "d_batch_norm": false }),
    ] {
        let train_options = serde_json::json!({ "objective": "wgan-gp", "beta1": 0.0, "beta2": 0.9,
            "lr_g": 1e-4, "lr_d": 1e-3, "n_critic": 5, "batch_size": 16 });
        let mut trainer = Trainer::new(config(model, train_options), &device()).unwrap();
        let history = train(&mut trainer, 25);
        assert_finite(&history);
        assert!(mean_of(&history[15..], "wasserstein") > 0.0);
        assert!(mean_of(&history, "gradient_penalty") >= 0.0);
    }
}

#[test]
fn vae_loss_falls() {
    let model =
        serde_json::json!({ "family": "vae", "image_size": 32, "latent_dim": 16, "width": 8 });
    let train_options =
        serde_json::json!({ "objective": "vae", "lr_g": 2e-3, "beta1": 0.9, "batch_size": 16 });
    let mut trainer = Trainer::new(config(model, train_options), &device()).unwrap();
    let history = train(&mut trainer, 30);
    assert_finite(&history);
    let (first, last) = (
        mean_of(&history[..5], "loss"),
        mean_of(&history[25..], "loss"),
    );
    assert!(last < first * 0.8, "loss should fall: {first} → {last}");
}

#[test]
fn configs_that_cannot_train_are_refused_with_the_reason() {
    let refuse = |model: serde_json::Value, train: serde_json::Value, words: &str| {
        let config: TrainConfig =
            serde_json::from_value(serde_json::json!({ "model": model, "train": train })).unwrap();
        let reason = config.validate().unwrap_err();
        assert!(
            reason.contains(words),
            "{reason:?} should mention {words:?}"
        );
    };
    refuse(
        small_dcgan(),
        serde_json::json!({ "objective": "vae" }),
        "vae",
    );
    refuse(
        small_dcgan(),
        serde_json::json!({ "objective": "wgan-gp" }),
        "batch norm",
    );
    refuse(
        serde_json::json!({ "family": "mlp" }),
        serde_json::json!({ "objective": "wgan-gp" }),
        "dropout",
    );
    refuse(
        small_dcgan(),
        serde_json::json!({ "batch_size": 0 }),
        "batch_size",
    );
    refuse(small_dcgan(), serde_json::json!({ "lr_g": -1.0 }), "lr_g");
    refuse(
        small_dcgan(),
        serde_json::json!({ "geometric_p": 1.5 }),
        "geometric_p",
    );
    // ADA adapts the geometric transforms' probability: without them it has nothing to adapt.
    refuse(
        small_dcgan(),
        serde_json::json!({ "ada_target": 0.6, "augment": ["translation"] }),
        "geometric",
    );
    refuse(
        small_dcgan(),
        serde_json::json!({ "ada_target": 0.6, "augment": ["geometric"], "objective": "wgan-clip" }),
        "bce",
    );
    // A 32x32 DCGAN discriminator has 4 weight layers; freezing all of them trains nothing.
    refuse(
        small_dcgan(),
        serde_json::json!({ "freeze_d": 4 }),
        "freeze_d",
    );
    refuse(
        small_dcgan(),
        serde_json::json!({ "freeze_g": 4 }),
        "freeze_g",
    );
    refuse(
        small_dcgan(),
        serde_json::json!({ "lecam_weight": -0.1 }),
        "lecam_weight",
    );
    refuse(
        small_dcgan(),
        serde_json::json!({ "lecam_weight": 0.1, "lecam_decay": 1.0 }),
        "lecam_decay",
    );
    let unknown = serde_json::from_value::<TrainConfig>(
        serde_json::json!({ "model": small_dcgan(), "train": { "learning_rate": 1 } }),
    );
    assert!(unknown.unwrap_err().to_string().contains("learning_rate"));
}

/// ∇ₓD written as a forward pass equals autodiff's first-order gradient and finite differences.
#[test]
fn critic_input_gradient_is_exact() {
    let device = device();
    let critics = [
        ModelConfig::from_fields(&serde_json::json!({ "family": "mlp", "image_size": 8, "d_hidden": [32, 16], "d_dropout": 0.0 })).unwrap(),
        ModelConfig::from_fields(&serde_json::json!({ "family": "dcgan", "image_size": 32, "d_width": 4, "d_batch_norm": false })).unwrap(),
    ];
    for model in critics {
        device.seed(3);
        let d = model.init_discriminator(&device).unwrap();
        let size = model.image_size();
        let x = Tensor::<4>::random([3, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
        let ours = d
            .input_gradient(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();

        let leaf = x.clone().require_grad();
        let grads = d.forward(leaf.clone()).sum().backward();
        let autodiff = leaf
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let scale = autodiff.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            max_abs_diff(&ours, &autodiff) <= 1e-5 * scale.max(1.0),
            "{}",
            model.family()
        );

        // Central differences on a few coordinates of the first image (f32: loose tolerance).
        let values = x.clone().into_data().try_to_vec::<f32>().unwrap();
        let score = |v: &[f32]| {
            let t =
                Tensor::<4>::from_data(TensorData::new(v.to_vec(), [3, 3, size, size]), &device);
            d.valid()
                .forward(t)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()[0] as f64
        };
        for i in [0, 7, values.len() / 3 - 5] {
            let h = 1e-2;
            let (mut up, mut down) = (values.clone(), values.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (score(&up) - score(&down)) / (2.0 * h as f64);
            let tolerance = 2e-3 * scale.max(1e-3) as f64 + 1e-4;
            assert!(
                (numeric - ours[i] as f64).abs() <= tolerance,
                "{}: coordinate {i}: {numeric} vs {}",
                model.family(),
                ours[i]
            );
        }
    }
}

/// With batch norm, ∇ₓD holds the batch's statistics fixed: it equals autodiff's gradient of
/// the same D with each norm fed its batch mean and variance as constants, and computing it
/// leaves the running statistics alone.
#[test]
fn input_gradient_with_batch_norm_holds_the_batch_statistics() {
    use burn::tensor::activation::leaky_relu;
    use burn::tensor::module::{batch_norm, batch_norm_train};
    let device = device();
    let model = ModelConfig::from_fields(
        &serde_json::json!({ "family": "dcgan", "image_size": 32, "d_width": 4 }),
    )
    .unwrap();
    device.seed(5);
    let d = model.init_discriminator(&device).unwrap();
    let Discriminator::Dcgan(inner) = &d else {
        unreachable!("a dcgan discriminator")
    };
    let running = |d: &retrato::model::dcgan::Discriminator| {
        let norm = d.blocks[0].norm.as_ref().expect("batch norm");
        norm.running_mean
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let before = running(inner);
    let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let ours = d
        .input_gradient(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(running(inner), before, "running statistics untouched");

    let leaf = x.require_grad();
    let mut h = leaky_relu(inner.from_rgb.forward(leaf.clone()), 0.2);
    for block in &inner.blocks {
        let c = block.conv.forward(h);
        let norm = block.norm.as_ref().unwrap();
        let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
        let stats = batch_norm_train(c.clone(), gamma.clone(), beta.clone(), norm.epsilon);
        let a = batch_norm(c, gamma, beta, stats.mean, stats.variance, norm.epsilon);
        h = leaky_relu(a, 0.2);
    }
    let grads = inner.head.forward(h).sum().backward();
    let reference = leaf
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    assert!(
        max_abs_diff(&ours, &reference) <= 1e-5 * scale.max(1.0),
        "{} (scale {scale})",
        max_abs_diff(&ours, &reference)
    );
}

#[test]
fn diff_augment_keeps_shape_and_translation_shifts_content() {
    let device = Device::flex();
    let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
    let policy = [Augment::Color, Augment::Translation, Augment::Cutout];
    let p = || Tensor::<1>::from_floats([0.25], &device);
    let out = diff_augment(x.clone(), &policy, p(), &mut SplitMix64::stream(1, 0));
    assert_eq!(out.dims(), [4, 3, 16, 16]);
    let again = diff_augment(x.clone(), &policy, p(), &mut SplitMix64::stream(1, 0));
    assert_eq!(
        out.into_data(),
        again.into_data(),
        "same stream, same augmentation"
    );
    // Translation alone only moves pixels (or zeroes them): the set of values shrinks.
    let moved = diff_augment(
        x.clone(),
        &[Augment::Translation],
        p(),
        &mut SplitMix64::stream(2, 0),
    );
    let (a, b) = (
        x.into_data().try_to_vec::<f32>().unwrap(),
        moved.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert!(b.iter().all(|v| *v == 0.0 || a.contains(v)));
    assert_ne!(a, b);
}

/// ADA's geometric group: with probability 0 every image is resampled at its own pixel
/// centres (unchanged); with 1 every image moves, the stream decides how (same stream, same
/// images), and G's gradient flows through the resampling.
#[test]
fn geometric_augmentation_keeps_images_at_p_0_and_moves_them_differentiably_at_p_1() {
    let device = Device::flex();
    let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
    let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    let policy = [Augment::Geometric];
    let p = |value: f32, device: &Device| Tensor::<1>::from_floats([value], device);
    let kept = diff_augment(
        x.clone(),
        &policy,
        p(0.0, &device),
        &mut SplitMix64::stream(3, 0),
    );
    assert!(max_abs_diff(&values(kept), &values(x.clone())) < 1e-5);

    let moved = diff_augment(
        x.clone(),
        &policy,
        p(1.0, &device),
        &mut SplitMix64::stream(3, 0),
    );
    let again = diff_augment(
        x.clone(),
        &policy,
        p(1.0, &device),
        &mut SplitMix64::stream(3, 0),
    );
    assert_eq!(moved.dims(), [4, 3, 16, 16]);
    let (moved, again, original) = (values(moved), values(again), values(x.clone()));
    assert_eq!(moved, again, "same stream, same transforms");
    let plane = 3 * 16 * 16;
    for image in 0..4 {
        let range = image * plane..(image + 1) * plane;
        assert!(
            max_abs_diff(&moved[range.clone()], &original[range]) > 0.1,
            "image {image} moved"
        );
    }
    // Mirrored borders and bilinear weights: no value beyond the input's range.
    assert!(moved.iter().all(|v| (-1.0 - 1e-5..=1.0 + 1e-5).contains(v)));

    let trainable = device.clone().autodiff();
    let x = Tensor::<4>::from_data(x.into_data(), &trainable).require_grad();
    let out = diff_augment(
        x.clone(),
        &policy,
        p(1.0, &trainable),
        &mut SplitMix64::stream(3, 0),
    );
    let gradients = out.sum().backward();
    let grad = values(x.grad(&gradients).expect("a gradient reaches the input"));
    // Each output pixel's bilinear weights sum to 1, so the gradient sums to the outputs.
    let total: f32 = grad.iter().sum();
    assert!(
        (total - (4 * plane) as f32).abs() < 1e-2 * (4 * plane) as f32,
        "{total}"
    );
}

/// ADA: after every D update the geometric probability moves by batch / ada_images towards
/// the target, stays within [0, 1], is reported as `augment_p`, and a checkpoint keeps it.
#[test]
fn ada_moves_the_geometric_probability_at_its_speed_and_a_checkpoint_keeps_it() {
    let train_options = serde_json::json!({ "batch_size": 8, "augment": ["geometric", "translation"],
        "geometric_p": 0.05, "ada_target": 0.6, "ada_images": 80.0, "seed": 2 });
    let mut trainer = Trainer::new(config(small_dcgan(), train_options), &device()).unwrap();
    let history = train(&mut trainer, 6);
    let mut previous = 0.05f32;
    for losses in &history {
        let p = losses
            .iter()
            .find(|(name, _)| *name == "augment_p")
            .unwrap()
            .1;
        let moved = (p - previous).abs();
        // A step of 8 images at 80 images per unit moves it by 0.1, or to a bound.
        assert!(
            (moved - 0.1).abs() < 1e-5 || p == 0.0 || p == 1.0,
            "{previous} -> {p}"
        );
        assert!((0.0..=1.0).contains(&p));
        previous = p;
    }
    let bytes = checkpoint::encode(&trainer, &RunInfo::default()).unwrap();
    let (resumed, _) = checkpoint::decode(&bytes, &device()).unwrap();
    let value = |t: &Trainer| t.geometric_p().into_scalar::<f32>();
    assert_eq!(value(&resumed), value(&trainer));
    assert_eq!(value(&trainer), previous);
}

/// The checkpoint carries everything: 2N steps equal N steps, save, load, N more steps, bit
/// for bit — with augmentation, flips and EMA drawing random numbers. (Dropout draws from
/// burn's process-wide generator, which parallel tests share; the CLI resume test covers it.)
#[test]
fn resuming_from_a_checkpoint_continues_exactly() {
    let model = small_dcgan();
    let train_options = serde_json::json!({ "batch_size": 8, "ema_decay": 0.9, "flip": true,
        "augment": ["geometric", "color", "translation", "cutout"], "ada_target": 0.6,
        "ada_images": 200.0, "lecam_weight": 0.2, "seed": 5 });
    let config = config(model, train_options);
    let device = device();

    // One initialisation for both, through a step-0 checkpoint: two Trainer::new calls would
    // each draw from burn's process-wide generator, which tests running in parallel share.
    let start = checkpoint::encode(&Trainer::new(config, &device).unwrap(), &RunInfo::default());
    let start = start.unwrap();
    let (mut straight, _) = checkpoint::decode(&start, &device).unwrap();
    let (mut first_half, _) = checkpoint::decode(&start, &device).unwrap();
    train(&mut straight, 8);

    train(&mut first_half, 4);
    let bytes = checkpoint::encode(&first_half, &RunInfo::default()).unwrap();
    drop(first_half);
    let (mut resumed, _) = checkpoint::decode(&bytes, &device).unwrap();
    assert_eq!(resumed.step, 4);
    train(&mut resumed, 4);

    let tensors = |t: &Trainer| {
        let part = Part::generator(&t.sampling_generator(), &t.config.model).unwrap();
        let header = retrato::weights::Header::new(t.config.model.clone());
        let file =
            ModelFile::from_bytes(&retrato::weights::encode(&header, &[part]).unwrap()).unwrap();
        let g = file.generator(&Device::flex()).unwrap();
        let z = retrato::sample::seeded_latents(&g, 0, 0, 4, &Device::flex());
        g.generate(z).into_data().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(max_abs_diff(&tensors(&straight), &tensors(&resumed)), 0.0);
    let raw = |t: &Trainer| t.generator().valid();
    let z = retrato::sample::seeded_latents(&raw(&straight), 1, 0, 4, &Device::flex());
    let (a, b) = (raw(&straight).forward(z.clone()), raw(&resumed).forward(z));
    assert_eq!(
        a.into_data(),
        b.into_data(),
        "the trained generator too, not only its average"
    );
}

#[test]
fn a_checkpoint_is_also_a_model_file() {
    let config = config(
        small_dcgan(),
        serde_json::json!({ "batch_size": 8, "ema_decay": 0.99 }),
    );
    let mut trainer = Trainer::new(config, &device()).unwrap();
    train(&mut trainer, 2);
    let bytes = checkpoint::encode(&trainer, &RunInfo::default()).unwrap();
    let file = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(file.header.steps, 2);
    assert!(file.generator(&Device::flex()).is_ok());
    assert!(file.has_part("discriminator.") && file.has_part("ema.generator."));
    // A plain model file is refused as a checkpoint, with the reason.
    let header = retrato::weights::Header::new(trainer.config.model.clone());
    let part = Part::generator(&trainer.generator().valid(), &trainer.config.model).unwrap();
    let plain = retrato::weights::encode(&header, &[part]).unwrap();
    let error = checkpoint::decode(&plain, &device()).err().unwrap();
    assert!(
        error.to_string().contains("not a training checkpoint"),
        "{error}"
    );
}

/// Each discriminator tensor, flattened, in visiting order.
fn discriminator_values(trainer: &Trainer) -> Vec<Vec<f32>> {
    let retrato::train::trainer::Networks::Gan { discriminator, .. } = &trainer.networks else {
        panic!("a GAN")
    };
    let Discriminator::Dcgan(d) = discriminator else {
        panic!("a DCGAN")
    };
    let mut values = Vec::new();
    let mut push = |t: Tensor<4>| values.push(t.into_data().try_to_vec::<f32>().unwrap());
    push(d.from_rgb.weight.val());
    for block in &d.blocks {
        push(block.conv.weight.val());
    }
    push(d.head.weight.val());
    values
}

/// FreezeD: the two layers nearest the image keep their weights; the rest of D learns.
#[test]
fn freeze_d_keeps_the_lowest_discriminator_layers_fixed() {
    let config = config(
        small_dcgan(),
        serde_json::json!({ "batch_size": 8, "freeze_d": 2 }),
    );
    let mut trainer = Trainer::new(config, &device()).unwrap();
    let before = discriminator_values(&trainer);
    assert_finite(&train(&mut trainer, 3));
    let after = discriminator_values(&trainer);
    assert_eq!(before.len(), 4, "from_rgb, two blocks, head");
    assert_eq!(before[0], after[0], "from_rgb is frozen");
    assert_eq!(before[1], after[1], "the first block is frozen");
    assert_ne!(before[2], after[2], "the second block trains");
    assert_ne!(before[3], after[3], "the head trains");
}

/// FreezeG: the two layers nearest the latent keep their weights; the rest of G learns.
#[test]
fn freeze_g_keeps_the_generators_first_layers_fixed() {
    let config = config(
        small_dcgan(),
        serde_json::json!({ "batch_size": 8, "freeze_g": 2 }),
    );
    let mut trainer = Trainer::new(config, &device()).unwrap();
    let before = generator_values(&trainer);
    assert_finite(&train(&mut trainer, 3));
    let after = generator_values(&trainer);
    assert_eq!(before.len(), 4, "three blocks, to_rgb");
    assert_eq!(before[0], after[0], "the first block is frozen");
    assert_eq!(before[1], after[1], "the second block is frozen");
    assert_ne!(before[2], after[2], "the third block trains");
    assert_ne!(before[3], after[3], "to_rgb trains");
}

/// A transfer run starts at step 0 from the file's weights: G from the moving average when
/// the file is a checkpoint, D from the file when it carries one, else a fresh D.
#[test]
fn transfer_starts_from_the_files_generator_and_discriminator() {
    let model = small_dcgan();
    let source_config = config(
        model.clone(),
        serde_json::json!({ "batch_size": 8, "ema_decay": 0.9 }),
    );
    let mut source = Trainer::new(source_config, &device()).unwrap();
    train(&mut source, 3);
    let checkpoint =
        ModelFile::from_bytes(&checkpoint::encode(&source, &RunInfo::default()).unwrap()).unwrap();
    // The fine-tuning recipe with another architecture in its model section: the file's wins.
    let mut finetune =
        retrato::train::finetune_config(&ModelConfig::default_for("dcgan").unwrap()).unwrap();
    finetune.train.batch_size = 8;

    let started = transfer::from_model(finetune.clone(), &checkpoint, None, &device()).unwrap();
    assert!(started.pretrained_discriminator);
    let trainer = started.trainer;
    assert_eq!(trainer.step, 0);
    assert_eq!(trainer.config.model, source.config.model);
    assert!(trainer.config.train.freeze_d > 0);
    assert_eq!(
        discriminator_values(&trainer),
        discriminator_values(&source)
    );
    let plain = Device::flex();
    let z = retrato::sample::seeded_latents(&source.sampling_generator(), 2, 0, 4, &plain);
    let expected = source.sampling_generator().generate(z.clone());
    let got = trainer.generator().valid().generate(z);
    let (a, b) = (
        expected.into_data().try_to_vec::<f32>().unwrap(),
        got.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert!(
        max_abs_diff(&a, &b) < 1e-5,
        "G starts as the source's average"
    );

    // An exported model file has no discriminator: a fresh one, and training still runs.
    let header = retrato::weights::Header::new(source.config.model.clone());
    let part = Part::generator(&source.sampling_generator(), &source.config.model).unwrap();
    let exported =
        ModelFile::from_bytes(&retrato::weights::encode(&header, &[part]).unwrap()).unwrap();
    let mut fresh = transfer::from_model(finetune.clone(), &exported, None, &device()).unwrap();
    assert!(!fresh.pretrained_discriminator);
    assert_ne!(
        discriminator_values(&fresh.trainer),
        discriminator_values(&source)
    );
    assert_finite(&train(&mut fresh.trainer, 2));
    // … unless the discriminator comes in a second file (how the page ships it).
    let paired =
        transfer::from_model(finetune.clone(), &exported, Some(&checkpoint), &device()).unwrap();
    assert!(paired.pretrained_discriminator);
    assert_eq!(
        discriminator_values(&paired.trainer),
        discriminator_values(&source)
    );
    let no_d = transfer::from_model(finetune.clone(), &exported, Some(&exported), &device());
    assert!(no_d.err().unwrap().contains("no discriminator"));

    // A VAE has no discriminator to adapt against: refused with the reason.
    let vae = serde_json::json!({ "family": "vae", "image_size": 32, "latent_dim": 8 });
    let vae_config = config(vae, serde_json::json!({ "objective": "vae" }));
    let vae_trainer = Trainer::new(vae_config, &device()).unwrap();
    let vae_file =
        ModelFile::from_bytes(&checkpoint::encode(&vae_trainer, &RunInfo::default()).unwrap())
            .unwrap();
    let refused = transfer::from_model(finetune, &vae_file, None, &device())
        .err()
        .unwrap();
    assert!(refused.contains("VAE"), "{refused}");
}

/// The page's checkpoint (read back asynchronously, no optimizer state) restores the same
/// networks, average and step; training goes on from it.
#[test]
fn a_portable_checkpoint_restores_the_networks_and_step() {
    let config = config(
        small_dcgan(),
        serde_json::json!({ "batch_size": 8, "ema_decay": 0.9, "freeze_d": 1 }),
    );
    let mut trainer = Trainer::new(config, &device()).unwrap();
    train(&mut trainer, 3);
    let info = RunInfo {
        started_from: Some("source.safetensors".into()),
        ..RunInfo::default()
    };
    let bytes = pollster::block_on(checkpoint::encode_portable(&trainer, &info)).unwrap();
    let (mut restored, restored_info) = checkpoint::decode(&bytes, &device()).unwrap();
    assert_eq!(restored.step, 3);
    assert_eq!(restored_info, info);
    assert_eq!(restored.config, trainer.config);
    assert_eq!(
        discriminator_values(&restored),
        discriminator_values(&trainer)
    );
    let plain = Device::flex();
    for pick in [Trainer::sampling_generator, |t: &Trainer| {
        t.generator().valid()
    }] {
        let z = retrato::sample::seeded_latents(&pick(&trainer), 4, 0, 4, &plain);
        let a = pick(&trainer)
            .generate(z.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b = pick(&restored)
            .generate(z)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(max_abs_diff(&a, &b) < 1e-6);
    }
    assert_finite(&train(&mut restored, 2));
    assert_eq!(restored.step, 5);
}

/// R1 is γ/2·E‖∇ₓD(x)‖² at the real images (autodiff's gradient as the reference), applied
/// lazily every `r1_every` D updates, refused for a discriminator with dropout.
#[test]
fn r1_penalty_is_lazy_and_matches_autodiff() {
    let device = device();
    let model = ModelConfig::from_fields(&serde_json::json!({ "family": "dcgan", "image_size": 32, "d_width": 4, "d_batch_norm": false })).unwrap();
    device.seed(4);
    let d = model.init_discriminator(&device).unwrap();
    let x = Tensor::<4>::random([3, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let leaf = x.clone().require_grad();
    let grads = d.forward(leaf.clone()).sum().backward();
    let g = leaf.grad(&grads).unwrap().into_data().try_to_vec::<f32>();
    let squared: f64 = g.unwrap().iter().map(|v| (*v as f64).powi(2)).sum();
    let expected = 0.5 * 2.0 * squared / 3.0;
    let ours = retrato::train::objective::r1_penalty(d.input_gradient(x), 2.0).into_scalar::<f32>();
    assert!(
        (ours as f64 - expected).abs() <= 1e-4 * expected,
        "{ours} vs {expected}"
    );

    let mut r1_model = small_dcgan();
    r1_model["d_batch_norm"] = false.into();
    let options = serde_json::json!({ "batch_size": 8, "r1_gamma": 0.5, "r1_every": 2 });
    let mut trainer = Trainer::new(config(r1_model, options.clone()), &device).unwrap();
    let history = train(&mut trainer, 4);
    assert_finite(&history);
    let with_r1: Vec<bool> = history
        .iter()
        .map(|step| step.iter().any(|(name, _)| *name == "r1"))
        .collect();
    assert_eq!(with_r1, [true, false, true, false]);

    // Batch norm is allowed (statistics held fixed); dropout is not.
    let with_norm: Result<TrainConfig, _> =
        serde_json::from_value(serde_json::json!({ "model": small_dcgan(), "train": options }));
    with_norm.unwrap().validate().unwrap();
    let mut with_dropout = small_dcgan();
    with_dropout["d_dropout"] = 0.3.into();
    let with_dropout: Result<TrainConfig, _> =
        serde_json::from_value(serde_json::json!({ "model": with_dropout, "train": options }));
    let problem = with_dropout.unwrap().validate().unwrap_err();
    assert!(
        problem.contains("r1_gamma") && problem.contains("dropout"),
        "{problem}"
    );
    // A batch-norm discriminator trains with R1.
    let options = serde_json::json!({ "batch_size": 8, "r1_gamma": 0.5, "r1_every": 1 });
    let mut trainer = Trainer::new(config(small_dcgan(), options), &device).unwrap();
    let history = train(&mut trainer, 2);
    assert_finite(&history);
    assert!(
        history
            .iter()
            .all(|step| step.iter().any(|(name, _)| *name == "r1"))
    );
}

/// LeCam's penalty by hand: the batch's means enter the (bias-corrected) averages first, D's
/// real outputs above the fakes' average and fake outputs below the reals' are penalised
/// quadratically, the rest not at all.
#[test]
fn lecam_penalises_outputs_past_the_other_sides_average() {
    let device = Device::flex();
    let values = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let floats = |v: &[f32]| Tensor::<1>::from_floats(v, &device);
    use retrato::train::objective::{lecam_averages, lecam_penalty};

    let (real, fake) = (floats(&[2.0, 4.0]), floats(&[-1.0, -3.0]));
    let averages = lecam_averages(floats(&[0.0, 0.0, 0.0]), real.clone(), fake.clone(), 0.99);
    let penalty = lecam_penalty(real, fake, averages.clone(), 0.5);
    // First batch: anchors are its own means, real 3 and fake -2.
    // Real: relu([2, 4] + 2)² = [16, 36]; fake: relu(3 - [-1, -3])² = [16, 36]; 0.5 · (26 + 26).
    assert!((penalty.into_scalar::<f32>() - 26.0).abs() < 1e-4);
    let averages = values(averages);
    assert!(
        max_abs_diff(&averages, &[0.03, -0.02, 0.01]) < 1e-7,
        "{averages:?}"
    );

    // Outputs already on their own side of the other's anchor cost nothing: with the batch's
    // means in, the anchors are real (0.0297 - 0.05) / 0.0199 = -1.02 and fake
    // (-0.0198 + 0.07) / 0.0199 = 2.52; -5 is below 2.52, 7 above -1.02.
    let (real, fake) = (floats(&[-5.0]), floats(&[7.0]));
    let averages = lecam_averages(floats(&averages), real.clone(), fake.clone(), 0.99);
    let anchors = values(averages.clone());
    assert!(
        (anchors[0] / anchors[2] + 1.0201).abs() < 1e-3,
        "{anchors:?}"
    );
    assert_eq!(
        lecam_penalty(real, fake, averages, 0.5).into_scalar::<f32>(),
        0.0
    );
}

/// With a strong LeCam weight, D's outputs on real and fake images stay closer together than
/// without it, from the same start; the term is reported on every D update.
#[test]
fn lecam_keeps_the_discriminators_outputs_together() {
    let device = device();
    let options = serde_json::json!({ "batch_size": 8, "lr_d": 1e-3, "seed": 3 });
    // One initialisation for both (burn's generator is shared by parallel tests): one file.
    let start = Trainer::new(config(small_dcgan(), options), &device).unwrap();
    let start = checkpoint::encode(&start, &RunInfo::default()).unwrap();
    let with_weight = |weight: f64| {
        let (trainer, _) = checkpoint::decode(&start, &device).unwrap();
        let mut config = trainer.config.clone();
        config.train.lecam_weight = weight;
        let mut trainer =
            Trainer::from_networks(config, trainer.networks, trainer.ema, 0, 1.0, &device);
        let history = train(&mut trainer, 12);
        assert_finite(&history);
        history
    };
    let (plain, regularised) = (with_weight(0.0), with_weight(10.0));
    assert!(
        regularised
            .iter()
            .all(|step| step.iter().any(|(n, _)| *n == "lecam"))
    );
    assert!(
        plain
            .iter()
            .all(|step| step.iter().all(|(n, _)| *n != "lecam"))
    );
    let gap = |h: &[Vec<(&str, f32)>]| mean_of(&h[6..], "d_real") - mean_of(&h[6..], "d_fake");
    assert!(
        gap(&regularised) < 0.5 * gap(&plain),
        "real-fake gap {} with LeCam vs {} without",
        gap(&regularised),
        gap(&plain)
    );
}

/// Generator outputs of the trained (not averaged) generator on fixed latents.
fn raw_outputs(trainer: &Trainer) -> Vec<f32> {
    let g = trainer.generator().valid();
    let z = retrato::sample::seeded_latents(&g, 9, 0, 4, &g.device());
    g.forward(z).into_data().try_to_vec::<f32>().unwrap()
}

/// A reduced checkpoint (f16 networks, Adam moments in bf16 or none) carries the run: step,
/// config, run info and best FID exactly. Continued 6 steps (lr 1e-3), the trained
/// generator's pixels stay within 0.005 on the [-1, 1] scale of the run continued from the
/// full checkpoint when the bf16 moments are kept (measured 0.0018); restarted moments drift
/// at least 3x further (measured 0.015).
#[test]
fn a_reduced_checkpoint_continues_the_run() {
    let options = serde_json::json!({ "batch_size": 8, "ema_decay": 0.9, "flip": true,
        "augment": ["translation", "color"], "seed": 11, "lr_g": 1e-3, "lr_d": 1e-3 });
    let config = config(small_dcgan(), options);
    let device = device();
    let mut trainer = Trainer::new(config, &device).unwrap();
    train(&mut trainer, 6);
    let info = RunInfo {
        elapsed_seconds: 12.5,
        dataset: "toy (64 images)".into(),
        best_fid: Some((88.5, 4)),
        started_from: Some("celeba-64.safetensors".into()),
        rollbacks: 1,
    };
    let full = checkpoint::encode(&trainer, &info).unwrap();
    let with_moments =
        checkpoint::encode_reduced(&trainer, &info, checkpoint::Moments::Bf16).unwrap();
    let without = checkpoint::encode_reduced(&trainer, &info, checkpoint::Moments::Drop).unwrap();
    assert!(
        without.len() * 2 < full.len(),
        "{} vs {}",
        without.len(),
        full.len()
    );
    assert!(with_moments.len() < full.len());
    let reduced_file = ModelFile::from_bytes(&without).unwrap();
    let described = checkpoint::describe(&reduced_file);
    assert!(described.contains("restart"), "{described}");
    // The trained G, stored as int8 steps from its average, reads back within f16's reach.
    let g = reduced_file.generator(&device.clone().inner()).unwrap();
    let z = retrato::sample::seeded_latents(&g, 9, 0, 4, &g.device());
    let stored = g.forward(z).into_data().try_to_vec::<f32>().unwrap();
    let drift = max_abs_diff(&raw_outputs(&trainer), &stored);
    eprintln!("trained generator read from the reduced file: {drift}");
    assert!(drift < 0.005, "{drift}");

    let continued = |bytes: &[u8]| {
        let (mut resumed, resumed_info) = checkpoint::decode(bytes, &device).unwrap();
        assert_eq!(resumed.step, 6);
        assert_eq!(resumed_info, info);
        assert_eq!(resumed.config, trainer.config);
        assert!(resumed.ema.is_some());
        assert_finite(&train(&mut resumed, 6));
        raw_outputs(&resumed)
    };
    let reference = continued(&full);
    let near = max_abs_diff(&reference, &continued(&with_moments));
    let restarted = max_abs_diff(&reference, &continued(&without));
    eprintln!("continued 6 steps: bf16 moments {near}, moments restarted {restarted}");
    assert!(near < 0.005, "with bf16 moments: {near}");
    assert!(
        near * 3.0 < restarted,
        "bf16 moments {near} vs restarted {restarted}"
    );
}

/// Continuing a trained generator with a discriminator of another kind (no batch norm, for
/// R1): the generator is loaded, the discriminator starts fresh, and a discriminator file
/// that cannot fit is refused with the reason.
#[test]
fn a_transfer_may_change_the_discriminator() {
    let device = device();
    let source_config = config(small_dcgan(), serde_json::json!({ "batch_size": 8 }));
    let mut source = Trainer::new(source_config, &device).unwrap();
    train(&mut source, 1);
    let file =
        ModelFile::from_bytes(&checkpoint::encode(&source, &RunInfo::default()).unwrap()).unwrap();
    let mut model = small_dcgan();
    model["d_batch_norm"] = false.into();
    let run = config(
        model,
        serde_json::json!({ "batch_size": 8, "r1_gamma": 0.1 }),
    );
    let started = transfer::from_generator(run.clone(), &file, None, &device).unwrap();
    assert!(!started.pretrained_discriminator);
    let z = |t: &Trainer| retrato::sample::seeded_latents(&t.generator(), 2, 0, 2, &Device::flex());
    let a = source.sampling_generator().generate(z(&source));
    let b = started.trainer.generator().valid().generate(z(&source));
    let (a, b) = (
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert!(max_abs_diff(&a, &b) < 1e-6);
    let refused = transfer::from_generator(run, &file, Some(&file), &device)
        .err()
        .unwrap();
    assert!(refused.contains("discriminator"), "{refused}");
}

#[test]
fn the_learning_rate_decays_linearly_and_stops_updates_at_zero() {
    let options = serde_json::json!({
        "batch_size": 8, "lr_decay_start": 1, "lr_decay_end": 2, "lr_decay_final": 0.0,
    });
    let mut trainer = Trainer::new(config(small_dcgan(), options), &device()).unwrap();
    let t = trainer.config.train.clone();
    assert_eq!(t.lr_factor(0), 1.0);
    assert_eq!(t.lr_factor(1), 1.0);
    assert_eq!(t.lr_factor(2), 0.0);
    assert_eq!(t.lr_factor(100), 0.0);
    let mut halfway = t.clone();
    (
        halfway.lr_decay_start,
        halfway.lr_decay_end,
        halfway.lr_decay_final,
    ) = (100, 300, 0.5);
    assert!((halfway.lr_factor(200) - 0.75).abs() < 1e-12);

    // Steps 0 and 1 train at full rate; from step 2 the rates are 0 and nothing moves.
    train(&mut trainer, 2);
    let (g, d) = (generator_values(&trainer), discriminator_values(&trainer));
    train(&mut trainer, 2);
    assert_eq!(generator_values(&trainer), g);
    assert_eq!(discriminator_values(&trainer), d);

    let bad = serde_json::json!({ "model": small_dcgan(), "train": { "lr_decay_start": 5, "lr_decay_end": 5 } });
    let bad: TrainConfig = serde_json::from_value(bad).unwrap();
    let refused = bad.validate().unwrap_err();
    assert!(refused.contains("lr_decay_end"), "{refused}");
}

/// Each generator convolution's weights, flattened (batch norm's statistics move with
/// every forward pass, learning rate or not).
fn generator_values(trainer: &Trainer) -> Vec<Vec<f32>> {
    let retrato::train::trainer::Networks::Gan { generator, .. } = &trainer.networks else {
        panic!("a GAN")
    };
    let retrato::model::Generator::Dcgan(g) = generator else {
        panic!("a DCGAN")
    };
    let mut values = Vec::new();
    let mut push = |t: Tensor<4>| values.push(t.into_data().try_to_vec::<f32>().unwrap());
    for block in &g.blocks {
        push(block.conv.weight.val());
    }
    push(g.to_rgb.weight.val());
    values
}
