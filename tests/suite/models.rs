//! Model families: parameter counts that match PyTorch, and output shapes at every size.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use retrato::model::widen::widen_generator;
use retrato::model::{DcganConfig, MlpConfig, ModelConfig, VaeConfig, parameter_count};

fn device() -> Device {
    Device::flex()
}

#[test]
fn dcgan_parameter_counts_match_the_pytorch_example() {
    let config = DcganConfig::new();
    assert_eq!(
        parameter_count(&config.init_generator(&device())),
        3_576_704
    );
    assert_eq!(
        parameter_count(&config.init_discriminator(&device())),
        2_765_568
    );
}

#[test]
fn dcgan_generates_and_judges_every_supported_size() {
    for size in [32, 64, 128] {
        let config = DcganConfig::new()
            .with_image_size(size)
            .with_g_width(8)
            .with_d_width(8)
            .with_latent_dim(16);
        let g = config.init_generator(&device());
        let images = g.forward(Tensor::random(
            [2, 16],
            Distribution::Normal(0.0, 1.0),
            &device(),
        ));
        assert_eq!(images.dims(), [2, 3, size, size], "size {size}");
        let values = images.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(
            values.iter().all(|v| (-1.0..=1.0).contains(v)),
            "tanh range at size {size}"
        );
        let logits = config.init_discriminator(&device()).forward(images);
        assert_eq!(logits.dims(), [2]);
    }
}

/// Net2WiderNet: a generator widened from 8 to 12 channels draws nearly the same portraits,
/// with batch norm on its running statistics (sampling) and on the batch's own (training),
/// and no new channel is an exact copy of another, so that training can tell them apart.
#[test]
fn a_widened_generator_draws_the_same_portraits() {
    let config = DcganConfig::new()
        .with_image_size(32)
        .with_g_width(8)
        .with_d_width(8)
        .with_latent_dim(16);
    for device in [device(), device().autodiff()] {
        let g = config.init_generator(&device);
        let (wide, wide_config) = widen_generator(&g, &config, 12, 7, &device).unwrap();
        assert_eq!(wide_config.g_width, 12);
        let widths: Vec<usize> = wide.blocks.iter().map(|b| b.norm.gamma.dims()[0]).collect();
        assert_eq!(widths, [48, 24, 12]);
        let z = Tensor::<2>::random([6, 16], Distribution::Normal(0.0, 1.0), &device);
        let values = |t: Tensor<4>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let (before, after) = (values(g.forward(z.clone())), values(wide.forward(z)));
        let worst = crate::max_abs_diff(&before, &after);
        assert!(worst < 0.02, "widening moved the portraits by {worst}");
        // The first block's weight [latent, channels, 4, 4]: no two channels alike.
        let weight = wide.blocks[0].conv.weight.val();
        let channel = |c: usize| values(weight.clone().narrow(1, c, 1));
        for a in 0..48 {
            for b in a + 1..48 {
                assert_ne!(channel(a), channel(b), "channels {a} and {b} are twins");
            }
        }
    }
    let narrower = widen_generator(&config.init_generator(&device()), &config, 8, 7, &device());
    assert!(narrower.unwrap_err().contains("larger g_width"));
}

#[test]
fn dcgan_rejects_unsupported_sizes() {
    let config = ModelConfig::Dcgan(DcganConfig::new().with_image_size(48));
    assert!(config.validate().unwrap_err().contains("32, 64 or 128"));
}

#[test]
fn mlp_matches_report_004_layout() {
    let config = MlpConfig::new();
    let g = config.init_generator(&device());
    // 100→256→512→1024→12288, each with bias.
    let expected =
        (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 12288 + 12288);
    assert_eq!(g.num_params(), expected);
    let images = g.forward(Tensor::random(
        [3, 100],
        Distribution::Normal(0.0, 1.0),
        &device(),
    ));
    assert_eq!(images.dims(), [3, 3, 64, 64]);
    let scores = config.init_discriminator(&device()).forward(images);
    assert_eq!(scores.dims(), [3]);
}

#[test]
fn vae_encodes_decodes_and_samples_in_unit_range() {
    let config = VaeConfig::new().with_width(8).with_latent_dim(32);
    let vae = config.init(&device());
    let images = Tensor::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device());
    let (recon, mean, log_var) = vae.forward(images);
    assert_eq!(recon.dims(), [2, 3, 64, 64]);
    assert_eq!(mean.dims(), [2, 32]);
    assert_eq!(log_var.dims(), [2, 32]);
    let values = recon.into_data().try_to_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(
        VaeConfig::new().latent_dim,
        512,
        "report 001's latent size is the default"
    );
}

#[test]
fn config_round_trips_through_json_with_its_family_tag() {
    for family in retrato::model::FAMILIES {
        let config = ModelConfig::default_for(family).unwrap();
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(&format!("\"family\":\"{family}\"")), "{json}");
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), config);
    }
}

/// Every model the page lists loads and draws non-blank portraits; a listed discriminator
/// starts a fine-tuning run on its model; every card file exists.
#[test]
fn every_shipped_model_loads_and_its_discriminator_fits() {
    use retrato::weights::ModelFile;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models");
    let catalogue: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("models.json")).unwrap()).unwrap();
    let models = catalogue["models"].as_array().unwrap();
    assert!(models.len() >= 2);
    for entry in models {
        let file = entry["file"].as_str().unwrap();
        let model = ModelFile::from_path(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let generator = model.generator(&device()).unwrap();
        let z = retrato::sample::seeded_latents(&generator, 0, 0, 2, &device());
        let pixels = generator
            .generate(z)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mean = pixels.iter().sum::<f32>() / pixels.len() as f32;
        let spread = pixels.iter().map(|v| (v - mean).abs()).sum::<f32>() / pixels.len() as f32;
        assert!(spread > 0.01, "{file} draws flat portraits");
        if let Some(card) = entry["card"].as_str() {
            assert!(dir.join(card).exists(), "{file}: card {card} missing");
        }
        if let Some(d) = entry["discriminator"].as_str() {
            let d_file = ModelFile::from_path(&dir.join(d)).unwrap();
            let config = retrato::train::finetune_config(&model.header.model).unwrap();
            let started = retrato::train::transfer::from_model(
                config,
                &model,
                Some(&d_file),
                &device().autodiff(),
            )
            .unwrap_or_else(|e| panic!("{d}: {e}"));
            assert!(started.pretrained_discriminator);
        }
    }
}
