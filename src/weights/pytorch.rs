//! A PyTorch DCGAN generator state_dict (pytorch/examples `netG`, saved as safetensors) as a
//! model file. Its `main.{i}` keys are renamed to retrato's and the configuration is read off
//! the tensor shapes, so any nz, ngf, channel count and 32/64/128 size loads.
//!
//! `main` is a Sequential of [ConvT, BN, ReLU] × k then [ConvT, Tanh]: ConvTs sit at indices
//! 0, 3, 6, …, and each but the last has its BatchNorm right after it.

use std::collections::BTreeMap;

use super::{Header, ModelFile, StoredTensor, WeightsError};
use crate::model::{DcganConfig, ModelConfig};

pub(super) fn import_dcgan_generator(
    tensors: BTreeMap<String, StoredTensor>,
) -> Result<ModelFile, WeightsError> {
    // `nn.DataParallel` saves the same keys under "module.".
    let tensors: BTreeMap<String, StoredTensor> = tensors
        .into_iter()
        .map(|(k, v)| {
            (
                k.strip_prefix("module.").map(str::to_string).unwrap_or(k),
                v,
            )
        })
        .collect();
    let conv_indices = conv_transpose_indices(&tensors)?;
    let (&last, blocks) = conv_indices.split_last().expect("at least four convs");
    let mut renames = vec![(
        format!("main.{last}.weight"),
        "generator.to_rgb.weight".to_string(),
    )];
    for (block, &i) in blocks.iter().enumerate() {
        renames.push((
            format!("main.{i}.weight"),
            format!("generator.blocks.{block}.conv.weight"),
        ));
        for stat in ["weight", "bias", "running_mean", "running_var"] {
            renames.push((
                format!("main.{}.{stat}", i + 1),
                format!("generator.blocks.{block}.norm.{stat}"),
            ));
        }
    }
    // A key we do not rename is a layer this importer does not know: refuse rather than drop it.
    if let Some(extra) = tensors
        .keys()
        .find(|k| !renames.iter().any(|(from, _)| from == *k))
    {
        return Err(WeightsError::UnexpectedTensor(extra.clone()));
    }
    let mut renamed = BTreeMap::new();
    for (from, to) in renames {
        let tensor = tensors
            .get(&from)
            .ok_or(WeightsError::MissingTensor(from))?;
        renamed.insert(to, tensor.clone());
    }
    let to_rgb = &tensors[&format!("main.{last}.weight")];

    let first = &tensors[&format!("main.{}.weight", conv_indices[0])];
    let image_size = 4usize << (conv_indices.len() - 1);
    let config = DcganConfig::new()
        .with_latent_dim(first.shape[0])
        .with_g_width(to_rgb.shape[0])
        .with_channels(to_rgb.shape[1])
        .with_image_size(image_size);
    let mut header = Header::new(ModelConfig::Dcgan(config));
    header.dataset = "unknown (imported PyTorch DCGAN state_dict)".into();
    header.notes = "Imported from a PyTorch DCGAN netG state_dict.".into();
    Ok(ModelFile {
        header,
        tensors: renamed,
        training: None,
        state: BTreeMap::new(),
    })
}

/// Indices i of the `main.{i}.weight` tensors that are 4-D (the transposed convolutions).
fn conv_transpose_indices(
    tensors: &BTreeMap<String, StoredTensor>,
) -> Result<Vec<usize>, WeightsError> {
    let mut indices: Vec<usize> = tensors
        .iter()
        .filter(|(_, t)| t.shape.len() == 4)
        .filter_map(|(k, _)| {
            k.strip_prefix("main.")?
                .strip_suffix(".weight")?
                .parse()
                .ok()
        })
        .collect();
    indices.sort_unstable();
    let plausible = indices.len() >= 4 && indices.iter().enumerate().all(|(n, &i)| i == 3 * n);
    if !plausible {
        let sample: Vec<&str> = tensors.keys().take(4).map(String::as_str).collect();
        return Err(WeightsError::NotAModel(format!(
            "expected transposed convolutions at main.0, main.3, main.6, …; found tensors such as {sample:?}"
        )));
    }
    if indices.len() > 6 {
        return Err(WeightsError::NotAModel(format!(
            "{} transposed convolutions: only 32, 64 and 128 pixel DCGANs are supported",
            indices.len()
        )));
    }
    Ok(indices)
}
