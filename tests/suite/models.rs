//! Model families: parameter counts that match PyTorch, and output shapes at every size.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
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
