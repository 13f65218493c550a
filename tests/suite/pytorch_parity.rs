//! A PyTorch DCGAN generator (pytorch/examples key names) loads with its nz, ngf and size read
//! off the tensor shapes, and gives PyTorch's images. Fixtures: tests/fixtures/make_pytorch_dcgan.py.

use burn::tensor::Device;
use retrato::model::ModelConfig;
use retrato::sample::{latents_tensor, read, run};
use retrato::weights::ModelFile;

use crate::{max_abs_diff, npy_f32};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check(stem: &str, nz: usize, ngf: usize, size: usize) {
    let file = ModelFile::from_path(&fixture(&format!("{stem}.safetensors"))).unwrap();
    let ModelConfig::Dcgan(config) = &file.header.model else {
        panic!("not read as a DCGAN")
    };
    assert_eq!(
        (
            config.latent_dim,
            config.g_width,
            config.image_size,
            config.channels
        ),
        (nz, ngf, size, 3)
    );

    let device = Device::flex();
    let generator = file.generator(&device).unwrap();
    let (z_shape, z) = npy_f32(&fixture(&format!("{stem}_z.npy")));
    let (out_shape, expected) = npy_f32(&fixture(&format!("{stem}_out.npy")));
    let (ours, dims) = read(run(&generator, latents_tensor(z, nz, &device), true));
    assert_eq!(dims.map(|d| d as u64).to_vec(), out_shape);
    assert_eq!(z_shape[1] as usize, nz);
    let worst = max_abs_diff(&ours, &expected);
    assert!(worst <= 1e-4, "{stem}: max abs diff {worst}");
}

#[test]
fn pytorch_dcgan_64px_matches() {
    check("pytorch_netg_nz8_ngf4_64", 8, 4, 64);
}

#[test]
fn pytorch_dcgan_32px_other_nz_and_ngf_matches() {
    check("pytorch_netg_nz6_ngf3_32", 6, 3, 32);
}

/// The fixture's tensors with `edit` applied, re-serialised without a retrato header.
fn edited_fixture(edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let bytes = std::fs::read(fixture("pytorch_netg_nz8_ngf4_64.safetensors")).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = parsed
        .tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::F32)
        .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views = tensors.iter().map(|(name, shape, data)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data);
        (name.clone(), view.unwrap())
    });
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn pytorch_state_dict_with_a_missing_or_unknown_tensor_is_refused() {
    use retrato::weights::WeightsError;
    let missing = edited_fixture(|t| t.retain(|(name, _, _)| name != "main.4.running_var"));
    let error = ModelFile::from_bytes(&missing).unwrap_err();
    assert_eq!(
        error,
        WeightsError::MissingTensor("main.4.running_var".into())
    );
    let extra = edited_fixture(|t| t.push(("main.14.weight".into(), vec![1], vec![0; 4])));
    let error = ModelFile::from_bytes(&extra).unwrap_err();
    assert_eq!(
        error,
        WeightsError::UnexpectedTensor("main.14.weight".into())
    );
}

#[test]
fn data_parallel_prefix_is_accepted() {
    let prefixed = edited_fixture(|t| {
        t.iter_mut()
            .for_each(|(name, _, _)| *name = format!("module.{name}"))
    });
    let file = ModelFile::from_bytes(&prefixed).unwrap();
    assert_eq!(file.header.model.latent_dim(), 8);
}
