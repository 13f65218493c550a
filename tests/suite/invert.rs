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

/// Through the CLI: a portrait drawn by `sample` and saved as PNG is inverted (with the
/// model's discriminator in the loss) and `sample --latents` draws it again; a text file
/// given as the picture gets a message naming it.
#[cfg(feature = "native")]
#[test]
fn the_cli_inverts_a_png_and_sample_draws_the_latent() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_retrato"))
            .args(args)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "retrato {args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let model = at("tiny.safetensors");
    ok(&[
        "init",
        "--family",
        "dcgan",
        "--image-size",
        "32",
        "--width",
        "8",
        "--latent-dim",
        "16",
        "--with-discriminator",
        "--seed",
        "5",
        "--out",
        &model,
    ]);
    ok(&[
        "sample",
        "--model",
        &model,
        "--seed",
        "2",
        "--n",
        "3",
        "--each",
        &at("each"),
    ]);
    let picture = std::fs::read_dir(dir.path().join("each"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let picture = picture.to_string_lossy().into_owned();
    let latents = at("z.npy");
    let stdout = ok(&[
        "invert",
        "--model",
        &model,
        "--image",
        &picture,
        "--out",
        &latents,
        "--preview",
        &at("p.png"),
        "--steps",
        "150",
    ]);
    assert!(stdout.contains("PSNR"), "{stdout}");
    assert!(std::fs::metadata(at("p.png")).unwrap().len() > 0);
    ok(&[
        "sample",
        "--model",
        &model,
        "--latents",
        &latents,
        "--each",
        &at("again"),
    ]);
    let decode = |path: &std::path::Path| {
        let image = image::open(path).unwrap().to_rgb8();
        image
            .into_raw()
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect::<Vec<_>>()
    };
    // The one picture `sample --each` wrote into a folder.
    let only_picture = |name: &str| {
        std::fs::read_dir(dir.path().join(name))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path()
    };
    let score = psnr(
        &decode(std::path::Path::new(&picture)),
        &decode(&only_picture("again")),
    );
    assert!(
        score > 28.0,
        "the latent draws the picture again: PSNR {score}"
    );

    // The same face inside a larger photo: --crop LEFT,TOP,SIDE finds it there.
    let face = image::open(&picture).unwrap().to_rgb8();
    let mut photo = image::RgbImage::from_fn(80, 60, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, ((x * y) % 256) as u8])
    });
    image::imageops::overlay(&mut photo, &face, 40, 20);
    let photo_path = at("photo.png");
    photo.save(&photo_path).unwrap();
    ok(&[
        "invert",
        "--model",
        &model,
        "--image",
        &photo_path,
        "--crop",
        "40,20,32",
        "--out",
        &at("zc.npy"),
        "--steps",
        "150",
    ]);
    ok(&[
        "sample",
        "--model",
        &model,
        "--latents",
        &at("zc.npy"),
        "--each",
        &at("cropped"),
    ]);
    let score = psnr(
        &decode(std::path::Path::new(&picture)),
        &decode(&only_picture("cropped")),
    );
    assert!(score > 28.0, "the cropped face is found too: PSNR {score}");
    for (crop, reason) in [
        ("60,20,32", "outside the 80x60 picture"),
        ("0,0,12", "only 12 pixels"),
    ] {
        let refused = run(&[
            "invert",
            "--model",
            &model,
            "--image",
            &photo_path,
            "--crop",
            crop,
            "--out",
            &at("x.npy"),
        ]);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("photo.png") && stderr.contains(reason),
            "{stderr}"
        );
    }

    let text = at("notes.jpg");
    std::fs::write(&text, "not a picture").unwrap();
    let refused = run(&[
        "invert",
        "--model",
        &model,
        "--image",
        &text,
        "--out",
        &at("x.npy"),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("notes.jpg"), "{stderr}");
}

/// Pivotal tuning brings a latent's portrait closer to a picture it did not draw, while the
/// locality term keeps the portraits of other latents close to the untuned generator's.
#[test]
fn tuning_the_generator_fits_the_picture_and_keeps_other_portraits() {
    use retrato::invert::{TuneOptions, tune};
    let device = Device::flex().autodiff();
    let generator = small_generator(&device);
    let plain = generator.valid();
    let z = seeded_latents(&plain, 1, 0, 1, &device);
    // The target: another portrait of the model, so the latent starts far from it.
    let target = plain.generate(seeded_latents(&plain, 9, 0, 1, &Device::flex()));
    let (target_values, _) = read(target.clone());
    let target = burn::tensor::Tensor::from_data(target.into_data(), &device);
    let options = TuneOptions {
        steps: 60,
        learning_rate: 1e-3,
        ..TuneOptions::default()
    };
    let tuned = tune(&generator, z.clone(), target, &options).valid();
    let at = |g: &retrato::model::Generator, seed| {
        read(g.generate(seeded_latents(g, seed, 0, 1, &Device::flex()))).0
    };
    let before = psnr(&target_values, &at(&plain, 1));
    let after = psnr(&target_values, &at(&tuned, 1));
    let elsewhere = psnr(&at(&plain, 77), &at(&tuned, 77));
    eprintln!("tuning: {before:.1} -> {after:.1} dB; another portrait stays at {elsewhere:.1} dB");
    assert!(after > before + 3.0, "{before} -> {after}");
    assert!(elsewhere > 25.0, "another portrait moved: {elsewhere}");
}
