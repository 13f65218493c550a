//! Latent inversion: a portrait the model drew itself is found again, through the CLI too,
//! and bad pictures get their message.

use burn::tensor::Device;
use retrato::invert::{InvertOptions, Inverter, invert, psnr};
use retrato::model::ModelConfig;
use retrato::sample::{read, seeded_latents};

/// A small DCGAN with batch-norm statistics calibrated, so it draws structure, not grey.
fn small_generator(device: &Device) -> retrato::model::Generator {
    let model = ModelConfig::from_fields(&serde_json::json!({ "family": "dcgan", "image_size": 32, "g_width": 8, "d_width": 8, "latent_dim": 16 })).unwrap();
    let mut generator = model.init_generator(device);
    generator.calibrate_batch_norm(64);
    generator
}

#[test]
fn inverting_a_portrait_the_model_drew_recovers_it() {
    let device = Device::flex().autodiff();
    let generator = small_generator(&device);
    let plain = generator.valid();
    let z = seeded_latents(&plain, 3, 7, 1, &Device::flex());
    let (target, _) = read(plain.generate(z));
    let target_tensor = plain.generate(seeded_latents(&plain, 3, 7, 1, &Device::flex()));
    let target_on_device = burn::tensor::Tensor::from_data(target_tensor.into_data(), &device);
    let options = InvertOptions {
        steps: 200,
        feature_weight: 0.0,
        ..InvertOptions::default()
    };
    let inverter = Inverter::new(&generator, None, target_on_device, options).unwrap();
    let mut steps_seen = 0;
    let found = invert(inverter, &mut |step| steps_seen = step);
    assert_eq!(steps_seen, 200);
    let z = retrato::sample::latents_tensor(found.latent, 16, &Device::flex());
    let (drawn, _) = read(plain.generate(z));
    let score = psnr(&target, &drawn);
    eprintln!(
        "inverted a portrait of the model itself: PSNR {score:.1} dB, loss {}",
        found.loss
    );
    assert!(score > 30.0, "PSNR {score}");
}

#[test]
fn a_picture_of_the_wrong_size_is_refused() {
    let device = Device::flex().autodiff();
    let generator = small_generator(&device);
    let wrong = burn::tensor::Tensor::zeros([1, 3, 64, 64], &device);
    let error = Inverter::new(&generator, None, wrong, InvertOptions::default())
        .err()
        .unwrap();
    assert!(
        error.contains("3x64x64") && error.contains("3x32x32"),
        "{error}"
    );
}
