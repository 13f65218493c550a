//! A part stored as its difference from another part of the same file. A reduced training
//! checkpoint keeps the trained generator as int8 steps from its moving average (stored in
//! f16 beside it): half of what f16 takes, and as close, since the two stay near each other.
//! Readers add the base back while loading, so every other path sees ordinary tensors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{StoredTensor, WeightsError};

/// Stored tensors of a delta part are named this prefix + the tensor's own name.
pub const DELTA_PREFIX: &str = "delta.";
/// The safetensors metadata key listing the file's delta parts ([`DeltaOf`] as JSON).
pub const DELTAS_KEY: &str = "retrato.deltas";

/// The tensors under `target` are stored as their difference from those under `base`
/// (`target` + name = `base` + name + the stored `delta.target` + name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeltaOf {
    pub target: String,
    pub base: String,
}

/// The name a tensor of `target`'s part had in the base part.
pub(super) fn base_name(delta: &DeltaOf, name: &str) -> Option<String> {
    let rest = name.strip_prefix(&delta.target)?;
    Some(format!("{}{rest}", delta.base))
}

/// Replaces every stored `delta.` tensor by its base plus itself, under its own name. A
/// delta whose base is missing or of another shape, or a `delta.` tensor the metadata does
/// not explain, is an error naming the tensor.
pub(super) fn resolve(
    tensors: &mut BTreeMap<String, StoredTensor>,
    deltas_json: Option<&str>,
) -> Result<(), WeightsError> {
    let deltas: Vec<DeltaOf> = match deltas_json {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| WeightsError::BadHeader(format!("{DELTAS_KEY}: {e}")))?,
        None => Vec::new(),
    };
    let stored: Vec<String> = (tensors.keys())
        .filter(|name| name.starts_with(DELTA_PREFIX))
        .cloned()
        .collect();
    for stored_name in stored {
        let name = &stored_name[DELTA_PREFIX.len()..];
        let base = (deltas.iter())
            .find_map(|d| base_name(d, name))
            .ok_or_else(|| {
                WeightsError::BadHeader(format!("tensor '{stored_name}' names no base part"))
            })?;
        if tensors.contains_key(name) {
            return Err(WeightsError::UnexpectedTensor(stored_name));
        }
        let delta = tensors.remove(&stored_name).expect("listed");
        let base_tensor = (tensors.get(&base)).ok_or(WeightsError::MissingTensor(base))?;
        if base_tensor.shape != delta.shape {
            return Err(WeightsError::WrongShape {
                tensor: stored_name,
                expected: base_tensor.shape.clone(),
                found: delta.shape,
            });
        }
        let values = (base_tensor.values.iter())
            .zip(&delta.values)
            .map(|(b, d)| b + d)
            .collect();
        let shape = delta.shape;
        tensors.insert(name.to_string(), StoredTensor { shape, values });
    }
    Ok(())
}
