//! The model file: round trips for every family and storage, and one test per way a file can
//! be bad, each a typed error (never a panic).

use std::collections::HashMap;

use burn::tensor::Device;
use retrato::model::{DcganConfig, Generator, MlpConfig, ModelConfig, VaeConfig};
use retrato::sample::{read, run, seeded_latents};
use retrato::weights::{self, Header, METADATA_KEY, ModelFile, Part, Storage, WeightsError};

fn device() -> Device {
    Device::flex()
}

fn small_configs() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Dcgan(
            DcganConfig::new()
                .with_latent_dim(8)
                .with_g_width(4)
                .with_d_width(4),
        ),
        ModelConfig::Mlp(
            MlpConfig::new()
                .with_latent_dim(8)
                .with_g_hidden(vec![16, 32])
                .with_image_size(16),
        ),
        ModelConfig::Vae(
            VaeConfig::new()
                .with_latent_dim(8)
                .with_width(4)
                .with_image_size(32),
        ),
    ]
}

fn images(generator: &Generator, seed: u64) -> Vec<f32> {
    read(run(
        generator,
        seeded_latents(generator, seed, 0, 3, &device()),
        true,
    ))
    .0
}

/// A generator whose output is far from constant: batch-norm statistics calibrated (an
/// uncalibrated DCGAN draws near-uniform grey, which would hide loading mistakes).
fn lively_generator(config: &ModelConfig) -> Generator {
    let mut generator = config.init_generator(&device().autodiff());
    generator.calibrate_batch_norm(32);
    generator
}

fn encode_with(generator: &Generator, config: &ModelConfig, storage: Storage) -> Vec<u8> {
    let mut header = Header::new(config.clone());
    header.storage = storage;
    header.dataset = "test".into();
    header.metrics.insert("fid".into(), 12.5);
    weights::encode(&header, &[Part::generator(generator, config).unwrap()]).unwrap()
}

fn dcgan_bytes() -> Vec<u8> {
    let config = &small_configs()[0];
    encode_with(&lively_generator(config), config, Storage::F32)
}

fn std_dev(values: &[f32]) -> f32 {
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32).sqrt()
}

#[test]
fn every_family_round_trips_exactly_in_f32() {
    for config in small_configs() {
        let bytes = encode_with(&lively_generator(&config), &config, Storage::F32);
        let file = ModelFile::from_bytes(&bytes).unwrap();
        assert_eq!(file.header.model, config);
        assert_eq!(file.header.metrics["fid"], 12.5);
        let loaded = file.generator(&device()).unwrap();
        let family = config.family();
        assert!(
            std_dev(&images(&loaded, 1)) > 0.02,
            "{family}: output is not flat"
        );
        let again = encode_with(&loaded, &config, Storage::F32);
        assert!(
            again == bytes,
            "{family}: save → load → save changes the file"
        );
    }
}

#[test]
fn f16_storage_halves_the_file_and_stays_close() {
    for config in small_configs() {
        let generator = lively_generator(&config);
        let full = encode_with(&generator, &config, Storage::F32);
        let half = encode_with(&generator, &config, Storage::F16);
        assert!(
            half.len() < full.len() * 6 / 10,
            "{} vs {}",
            half.len(),
            full.len()
        );
        let load = |bytes: &[u8]| {
            ModelFile::from_bytes(bytes)
                .unwrap()
                .generator(&device())
                .unwrap()
        };
        let (reference, rounded) = (images(&load(&full), 2), images(&load(&half), 2));
        let worst = crate::max_abs_diff(&reference, &rounded);
        assert!(worst < 2e-2, "{}: f16 drift {worst}", config.family());
        assert!(worst > 0.0, "{}: f16 really rounds", config.family());
    }
}

#[test]
fn discriminator_and_encoder_parts_are_stored_beside_the_generator() {
    let ModelConfig::Dcgan(dcgan) = &small_configs()[0] else {
        unreachable!()
    };
    let config = small_configs()[0].clone();
    let generator = config.init_generator(&device());
    let discriminator = dcgan.init_discriminator(&device());
    let parts = [
        Part::generator(&generator, &config).unwrap(),
        Part::of(&discriminator, "discriminator.").unwrap(),
    ];
    let file =
        ModelFile::from_bytes(&weights::encode(&Header::new(config), &parts).unwrap()).unwrap();
    assert!(file.has_part("discriminator."));
    file.load_part(dcgan.init_discriminator(&device()), "discriminator.")
        .unwrap();
    file.generator(&device()).unwrap();
}

#[test]
fn a_discriminator_file_is_refused_for_another_architecture() {
    let config = small_configs()[0].clone();
    let ModelConfig::Dcgan(dcgan) = &config else {
        unreachable!()
    };
    let file_of = |model: &ModelConfig| {
        let generator = model.init_generator(&device());
        let part = Part::generator(&generator, model).unwrap();
        ModelFile::from_bytes(&weights::encode(&Header::new(model.clone()), &[part]).unwrap())
            .unwrap()
    };
    let d_file = {
        let discriminator = dcgan.init_discriminator(&device());
        let part = Part::of(&discriminator, "discriminator.").unwrap();
        ModelFile::from_bytes(&weights::encode(&Header::new(config.clone()), &[part]).unwrap())
            .unwrap()
    };
    d_file
        .discriminator_for(&file_of(&config), &device())
        .unwrap();
    let mut wider = dcgan.clone();
    wider.d_width *= 2;
    let other = file_of(&ModelConfig::Dcgan(wider));
    let refused = d_file.discriminator_for(&other, &device()).unwrap_err();
    assert!(
        matches!(refused, WeightsError::OtherArchitecture),
        "{refused}"
    );
    assert!(refused.to_string().contains("another architecture"));
}

#[test]
fn tensor_names_follow_pytorch() {
    let file = ModelFile::from_bytes(&dcgan_bytes()).unwrap();
    let names: Vec<&str> = file.tensor_names().collect();
    assert!(
        names.contains(&"generator.blocks.0.conv.weight"),
        "{names:?}"
    );
    assert!(
        names.contains(&"generator.blocks.0.norm.weight"),
        "BN gamma is stored as weight: {names:?}"
    );
    assert!(
        names.contains(&"generator.blocks.0.norm.running_var"),
        "{names:?}"
    );
}

// ---- bad files -------------------------------------------------------------------------

#[test]
fn int8_storage_halves_f16_again_and_stays_close() {
    for config in small_configs() {
        let generator = lively_generator(&config);
        let full = encode_with(&generator, &config, Storage::F32);
        let half = encode_with(&generator, &config, Storage::F16);
        let int8 = encode_with(&generator, &config, Storage::Int8);
        // (Tiny test models: the JSON header weighs; the page's DCGAN goes 7.2 → 3.6 MB.)
        assert!(
            int8.len() < half.len() * 8 / 10,
            "{}: {} vs {}",
            config.family(),
            int8.len(),
            half.len()
        );
        let file = ModelFile::from_bytes(&int8).unwrap();
        assert_eq!(file.header.storage, Storage::Int8);
        assert_eq!(file.header.format_version, weights::INT8_FORMAT_VERSION);
        assert!(
            file.tensor_names()
                .all(|n| !n.ends_with(weights::INT8_SCALE_SUFFIX)),
            "scales are folded into their tensors"
        );
        let load = |f: ModelFile| f.generator(&device()).unwrap();
        let reference = images(&load(ModelFile::from_bytes(&full).unwrap()), 2);
        let quantized = images(&load(file), 2);
        let worst = crate::max_abs_diff(&reference, &quantized);
        let mean = reference
            .iter()
            .zip(&quantized)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / reference.len() as f32;
        // Per-channel int8 keeps a generator's output within a few 8-bit levels.
        assert!(
            worst < 0.1 && mean < 0.01,
            "{}: int8 drift {worst}, mean {mean}",
            config.family()
        );
        assert!(worst > 0.0, "{}: int8 really rounds", config.family());
    }
    // A plain f16 file stays version 1, readable by older builds.
    let config = &small_configs()[0];
    let half = encode_with(&lively_generator(config), config, Storage::F16);
    assert_eq!(
        ModelFile::from_bytes(&half).unwrap().header.format_version,
        1
    );
}

#[test]
fn an_int8_tensor_without_its_scales_is_refused() {
    let config = &small_configs()[0];
    let int8 = encode_with(&lively_generator(config), config, Storage::Int8);
    let parsed = safetensors::SafeTensors::deserialize(&int8).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&int8).unwrap();
    let kept: Vec<_> = parsed
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "generator.to_rgb.weight.int8_scale")
        .collect();
    let bytes = safetensors::serialize(kept, metadata.metadata().clone()).unwrap();
    assert_eq!(
        error_of(&bytes),
        WeightsError::MissingTensor("generator.to_rgb.weight.int8_scale".into())
    );
}

/// The DCGAN generator of `config` as a part under `prefix`.
fn dcgan_part(generator: &Generator, prefix: &str) -> Part {
    match generator {
        Generator::Dcgan(g) => Part::of(g, prefix).unwrap(),
        _ => panic!("a DCGAN"),
    }
}

/// A part stored as int8 steps from another part of the file (a reduced checkpoint's
/// trained generator beside its average) reads back as itself, under its own name, in a
/// smaller file; here from an unrelated base, the hard case: as close as int8 storage.
/// Without its base, or with the metadata that names the base gone, it is refused.
#[test]
fn a_part_stored_as_steps_from_another_reads_back_as_itself() {
    let config = &small_configs()[0];
    let (base, target) = (lively_generator(config), lively_generator(config));
    let mut header = Header::new(config.clone());
    header.storage = Storage::F16;
    let encode_pair = |as_delta: bool| {
        let target = Part::generator(&target, config).unwrap();
        let target = match as_delta {
            true => target.stored_as_delta("generator.", "ema.generator."),
            false => target,
        };
        weights::encode(&header, &[target, dcgan_part(&base, "ema.generator.")]).unwrap()
    };
    let (plain, stepped) = (encode_pair(false), encode_pair(true));
    assert!(
        stepped.len() < plain.len() * 9 / 10,
        "{} vs {}",
        stepped.len(),
        plain.len()
    );
    let file = ModelFile::from_bytes(&stepped).unwrap();
    assert_eq!(file.header.format_version, weights::FORMAT_VERSION);
    assert!(
        file.tensor_names()
            .all(|n| !n.starts_with(weights::DELTA_PREFIX))
    );
    let exact = |g: &Generator| {
        let f32_file = encode_with(g, config, Storage::F32);
        images(
            &ModelFile::from_bytes(&f32_file)
                .unwrap()
                .generator(&device())
                .unwrap(),
            2,
        )
    };
    let read = images(&file.generator(&device()).unwrap(), 2);
    let worst = crate::max_abs_diff(&exact(&target), &read);
    assert!(worst > 0.0 && worst < 0.1, "drift {worst}");
    let base_read = file.generator_under("ema.generator.", &device()).unwrap();
    let base_drift = crate::max_abs_diff(&exact(&base), &images(&base_read, 2));
    assert!(base_drift < 2e-2, "the base as f16: {base_drift}");

    let alone = [Part::generator(&target, config).unwrap()];
    let alone = [alone
        .into_iter()
        .next()
        .unwrap()
        .stored_as_delta("generator.", "ema.generator.")];
    let refused = weights::encode(&header, &alone).err().unwrap();
    assert!(
        matches!(refused, WeightsError::MissingTensor(ref t) if t.starts_with("ema.generator."))
    );
    let parsed = safetensors::SafeTensors::deserialize(&stepped).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&stepped).unwrap();
    let mut metadata = metadata.metadata().clone().unwrap();
    metadata.remove(weights::DELTAS_KEY);
    let bytes = safetensors::serialize(parsed.tensors(), Some(metadata)).unwrap();
    let unexplained = error_of(&bytes);
    assert!(
        matches!(unexplained, WeightsError::BadHeader(ref m) if m.contains("delta.generator.")),
        "{unexplained}"
    );
}

fn error_of(bytes: &[u8]) -> WeightsError {
    match ModelFile::from_bytes(bytes).and_then(|f| f.generator(&device()).map(|_| ())) {
        Ok(()) => panic!("a bad file was accepted"),
        Err(e) => e,
    }
}

/// Rewrites a valid DCGAN file with its tensors and header changed by `edit`.
fn tampered(
    edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>, &mut serde_json::Value),
) -> Vec<u8> {
    let bytes = dcgan_bytes();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut header: serde_json::Value =
        serde_json::from_str(&metadata.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    edit(&mut tensors, &mut header);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = raw.iter().map(|(n, s, b)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap(),
        )
    });
    let metadata = HashMap::from([(METADATA_KEY.to_string(), header.to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

#[test]
fn empty_file() {
    assert_eq!(error_of(&[]), WeightsError::Empty);
}

#[test]
fn truncated_file() {
    let bytes = dcgan_bytes();
    for cut in [bytes.len() - 1, bytes.len() / 2, 20] {
        let error = error_of(&bytes[..cut]);
        assert!(
            matches!(error, WeightsError::Truncated { found, .. } if found == cut),
            "cut {cut}: {error}"
        );
    }
}

#[test]
fn not_safetensors() {
    for junk in [
        &b"\x89PNG\r\n\x1a\n not a model at all"[..],
        b"short",
        &[0xff; 64],
    ] {
        assert!(
            matches!(error_of(junk), WeightsError::NotSafetensors(_)),
            "{junk:?}"
        );
    }
}

#[test]
fn newer_format_version() {
    let bytes = tampered(|_, header| header["format_version"] = 99.into());
    assert_eq!(
        error_of(&bytes),
        WeightsError::NewerVersion {
            found: 99,
            supported: weights::FORMAT_VERSION
        }
    );
}

#[test]
fn unknown_family() {
    let bytes = tampered(|_, header| header["model"]["family"] = "stylegan".into());
    assert_eq!(
        error_of(&bytes),
        WeightsError::UnknownFamily("stylegan".into())
    );
}

#[test]
fn wrong_family() {
    let file = ModelFile::from_bytes(&dcgan_bytes()).unwrap();
    let error = file.expect_family("vae").unwrap_err();
    assert_eq!(
        error,
        WeightsError::WrongFamily {
            expected: "vae".into(),
            found: "dcgan".into()
        }
    );
    // A header that claims another family than its tensors is caught by the tensor check.
    let bytes = tampered(|_, header| {
        header["model"] =
            serde_json::to_value(ModelConfig::Mlp(MlpConfig::new().with_latent_dim(8))).unwrap()
    });
    assert!(matches!(error_of(&bytes), WeightsError::MissingTensor(_)));
}

#[test]
fn wrong_shape() {
    let bytes = tampered(|_, header| header["model"]["latent_dim"] = 9.into());
    let error = error_of(&bytes);
    assert!(
        matches!(&error, WeightsError::WrongShape { tensor, .. } if tensor == "generator.blocks.0.conv.weight"),
        "{error}"
    );
}

#[test]
fn missing_tensor() {
    let bytes = tampered(|tensors, _| tensors.retain(|(n, _, _)| n != "generator.to_rgb.weight"));
    assert_eq!(
        error_of(&bytes),
        WeightsError::MissingTensor("generator.to_rgb.weight".into())
    );
}

#[test]
fn unexpected_tensor() {
    let bytes = tampered(|tensors, _| {
        tensors.push(("generator.extra.weight".into(), vec![2], vec![0.0, 1.0]))
    });
    assert_eq!(
        error_of(&bytes),
        WeightsError::UnexpectedTensor("generator.extra.weight".into())
    );
}

#[test]
fn nan_and_inf_values() {
    for bad in [f32::NAN, f32::INFINITY] {
        let bytes = tampered(|tensors, _| tensors[0].2[0] = bad);
        assert!(
            matches!(error_of(&bytes), WeightsError::NonFinite { count: 1, .. }),
            "{bad}"
        );
    }
}

#[test]
fn bad_header_json() {
    let bytes = tampered(
        |_, header| *header = serde_json::json!({"format_version": 1, "model": {"family": "dcgan", "latent_dim": "many"}}),
    );
    assert!(matches!(error_of(&bytes), WeightsError::BadHeader(_)));
}

#[test]
fn invalid_configuration() {
    let bytes = tampered(|_, header| header["model"]["image_size"] = 48.into());
    assert!(matches!(error_of(&bytes), WeightsError::BadConfig(_)));
}

#[test]
fn safetensors_without_header_that_is_not_a_dcgan() {
    let data = vec![0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
    let bytes = safetensors::serialize([("fc.weight", view)], None).unwrap();
    assert!(matches!(error_of(&bytes), WeightsError::NotAModel(_)));
}

#[test]
fn values_too_large_for_f16_refuse_to_save() {
    let huge = tampered(|tensors, _| tensors[0].2[0] = 1e6);
    let file = ModelFile::from_bytes(&huge).unwrap();
    let loaded = file.generator(&device()).unwrap();
    let mut header = file.header.clone();
    header.storage = Storage::F16;
    let error =
        weights::encode(&header, &[Part::generator(&loaded, &header.model).unwrap()]).unwrap_err();
    assert!(
        matches!(error, WeightsError::F16Overflow { value, .. } if value == 1e6),
        "{error}"
    );
}
