//! The model file: safetensors with a JSON header under the `retrato` metadata key.
//!
//! Tensor names and layouts follow PyTorch (`weight` / `bias` / `running_mean` /
//! `running_var`, Linear weights as [out, in]) under one prefix per network
//! (`generator.`, `discriminator.`, or the VAE's `encoder.` / `decoder.`), so a file can be
//! read by any safetensors tool. A raw PyTorch DCGAN `netG` state_dict (no header) is also
//! accepted, see [`pytorch`]. Everything is validated before a single value reaches a model:
//! every failure is a [`WeightsError`], never a panic.

mod average;
mod delta;
mod error;
mod pytorch;
mod recalibrate;

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::tensor::{Device, TensorData};
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, bridge};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::model::{Discriminator, FAMILIES, Generator, ModelConfig};
pub use average::average;
pub use delta::{DELTA_PREFIX, DELTAS_KEY, DeltaOf};
pub use error::WeightsError;
pub use recalibrate::recalibrated;

/// Tensor-name prefix of a discriminator in a model file or checkpoint.
pub const DISCRIMINATOR_PREFIX: &str = "discriminator.";
/// Bumped when a change would make older readers misread a file: 3 added delta parts
/// (reduced checkpoints), 2 int8 tensors.
pub const FORMAT_VERSION: u32 = 3;
/// Files are written with the lowest version that reads them: without int8 tensors or
/// delta parts version 1, which every retrato reads …
const PLAIN_FORMAT_VERSION: u32 = 1;
/// … with int8 tensors (the page's models) 2.
pub const INT8_FORMAT_VERSION: u32 = 2;
/// Per-channel scales of an int8 tensor `name` are the f32 tensor `name` + this suffix.
pub const INT8_SCALE_SUFFIX: &str = ".int8_scale";
/// The safetensors metadata key that holds the [`Header`] as JSON.
pub const METADATA_KEY: &str = "retrato";
/// Training checkpoints add their run state as JSON under this key …
pub const TRAINING_KEY: &str = "retrato.training";
/// … and opaque byte blobs (optimizer state) as U8 tensors under this prefix. Loading a
/// model ignores both, so a checkpoint is also a model file.
pub const STATE_PREFIX: &str = "state.";

/// How tensor values are stored on disk. f16 halves the page's download; int8 halves it again
/// (weights of 2 or more dimensions as int8 with one f32 scale per slice of the first
/// dimension, the rest f16); training checkpoints keep f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    F32,
    F16,
    Int8,
}

/// Everything a model file says about itself besides its tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format_version: u32,
    pub model: ModelConfig,
    /// Dataset the weights were trained on, or a note such as "none (random init)".
    #[serde(default)]
    pub dataset: String,
    /// Optimiser steps of training behind these weights.
    #[serde(default)]
    pub steps: u64,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created: String,
    /// Quality numbers measured on these weights (FID, KID…), by name.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default = "default_storage")]
    pub storage: Storage,
    /// Free text for the model card (where the weights came from, caveats).
    #[serde(default)]
    pub notes: String,
    /// The last `retrato eval fid --record` (or training's best FID) on these weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
}

/// A quality measurement with what it was measured against, for the model card: FID on
/// 2,000 images means little without the reference set, N and the real-vs-real floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The reference set's file name (not a path on someone's machine).
    pub reference: String,
    /// Generated and reference images compared.
    pub n: usize,
    /// Portraits 0..n of this seed were generated.
    pub seed: u64,
    /// The FID network's file name and hash.
    pub network: String,
    #[serde(flatten)]
    pub scores: crate::eval::scores::Scores,
    /// FID of n real images (`floor_set`) against the same reference: the best a model
    /// can expect at this n.
    #[serde(default)]
    pub floor: Option<f64>,
    #[serde(default)]
    pub floor_set: Option<String>,
    /// RFC 3339 time of the measurement.
    #[serde(default)]
    pub measured: String,
}

impl Evaluation {
    /// The card's headline numbers as `Header::metrics` entries (what the page shows).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let s = &self.scores;
        let mut metrics = BTreeMap::from([
            ("fid".to_string(), s.fid),
            ("kid".to_string(), s.kid),
            ("precision".to_string(), s.precision),
            ("recall".to_string(), s.recall),
        ]);
        if let Some(floor) = self.floor {
            metrics.insert("fid_floor".to_string(), floor);
        }
        metrics
    }
}

fn default_storage() -> Storage {
    Storage::F32
}

impl Header {
    /// Forgets the measurements of weights that have since changed (tuned, averaged,
    /// recalibrated): they would describe another network.
    pub fn forget_measurements(&mut self) {
        self.metrics.clear();
        self.evaluation = None;
    }

    pub fn new(model: ModelConfig) -> Self {
        Self {
            format_version: PLAIN_FORMAT_VERSION,
            model,
            dataset: String::new(),
            steps: 0,
            created: String::new(),
            metrics: BTreeMap::new(),
            storage: Storage::F32,
            notes: String::new(),
            evaluation: None,
        }
    }
}

/// The tensor-name prefix of the network that generates images, per family.
pub fn generator_prefix(model: &ModelConfig) -> &'static str {
    match model {
        ModelConfig::Vae(_) => "decoder.",
        _ => "generator.",
    }
}

/// A tensor as read from disk, already converted to f32 and checked finite.
#[derive(Clone, Debug)]
struct StoredTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// A validated model file: header plus f32 tensors, ready to fill a network.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub header: Header,
    tensors: BTreeMap<String, StoredTensor>,
    /// A checkpoint's run state ([`TRAINING_KEY`]) and blobs ([`STATE_PREFIX`]).
    pub training: Option<String>,
    pub state: BTreeMap<String, Vec<u8>>,
}

impl ModelFile {
    /// Parses and validates a model file held in memory (the browser's path).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WeightsError> {
        if bytes.is_empty() {
            return Err(WeightsError::Empty);
        }
        let parsed = SafeTensors::deserialize(bytes).map_err(|e| error::classify(bytes, e))?;
        let (_, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| error::classify(bytes, e))?;
        let raw_header = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY));
        let training = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(TRAINING_KEY))
            .cloned();
        let deltas = (metadata.metadata().as_ref()).and_then(|m| m.get(DELTAS_KEY));
        let mut tensors = BTreeMap::new();
        let mut state = BTreeMap::new();
        for (name, view) in parsed.tensors() {
            if let Some(blob) = name.strip_prefix(STATE_PREFIX)
                && view.dtype() == Dtype::U8
            {
                state.insert(blob.to_string(), view.data().to_vec());
                continue;
            }
            // PyTorch's BatchNorm step counter is an integer buffer no model here uses.
            if raw_header.is_none() && name.ends_with("num_batches_tracked") {
                continue;
            }
            if name.ends_with(INT8_SCALE_SUFFIX) {
                continue; // read with its int8 tensor
            }
            let values = match view.dtype() {
                Dtype::I8 => dequantize(&name, &view, &parsed)?,
                dtype => to_f32(&name, dtype, view.data())?,
            };
            let non_finite = values.iter().filter(|v| !v.is_finite()).count();
            if non_finite > 0 {
                return Err(WeightsError::NonFinite {
                    tensor: name,
                    count: non_finite,
                });
            }
            tensors.insert(
                name,
                StoredTensor {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        delta::resolve(&mut tensors, deltas.map(String::as_str))?;
        match raw_header {
            Some(json) => Ok(Self {
                header: parse_header(json)?,
                tensors,
                training,
                state,
            }),
            None => pytorch::import_dcgan_generator(tensors),
        }
    }

    /// Reads and validates a model file from disk.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_path(path: &std::path::Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|e| WeightsError::Io(e.to_string()))?;
        Self::from_bytes(&bytes)
    }

    /// Fails unless the file holds a model of `family`.
    pub fn expect_family(&self, family: &str) -> Result<(), WeightsError> {
        match self.header.model.family() {
            found if found == family => Ok(()),
            found => Err(WeightsError::WrongFamily {
                expected: family.to_string(),
                found: found.to_string(),
            }),
        }
    }

    /// Number of stored values (parameters plus batch-norm statistics).
    pub fn value_count(&self) -> usize {
        self.tensors.values().map(|t| t.values.len()).sum()
    }

    /// Every tensor as one part, to write the file again (`retrato convert`).
    pub fn part(&self) -> Part {
        Part {
            tensors: self
                .tensors
                .iter()
                .map(|(name, t)| (name.clone(), t.shape.clone(), t.values.clone()))
                .collect(),
            delta: None,
        }
    }

    /// The tensors under `prefix`, renamed to start with `renamed` instead (e.g. a checkpoint's
    /// moving-average generator as a model file's generator).
    pub fn part_under(&self, prefix: &str, renamed: &str) -> Part {
        Part {
            tensors: self
                .tensors
                .iter()
                .filter_map(|(name, t)| {
                    let rest = name.strip_prefix(prefix)?;
                    Some((
                        format!("{renamed}{rest}"),
                        t.shape.clone(),
                        t.values.clone(),
                    ))
                })
                .collect(),
            delta: None,
        }
    }

    /// Names of the stored tensors, sorted.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Builds the file's generator on `device` (for a VAE, its decoder).
    pub fn generator(&self, device: &Device) -> Result<Generator, WeightsError> {
        self.generator_under(generator_prefix(&self.header.model), device)
    }

    /// Builds the generator stored under `prefix` (e.g. a checkpoint's moving average).
    pub fn generator_under(
        &self,
        prefix: &str,
        device: &Device,
    ) -> Result<Generator, WeightsError> {
        let model = &self.header.model;
        model.validate().map_err(WeightsError::BadConfig)?;
        Ok(match model.init_generator(device) {
            Generator::Dcgan(g) => Generator::Dcgan(self.load_part(g, prefix)?),
            Generator::Mlp(g) => Generator::Mlp(self.load_part(g, prefix)?),
            Generator::Vae(d) => Generator::Vae(self.load_part(d, prefix)?),
        })
    }

    /// Builds the file's discriminator on `device`, when it holds one (a checkpoint, or the
    /// page's `NAME.discriminator.safetensors`).
    pub fn discriminator(&self, device: &Device) -> Result<Discriminator, WeightsError> {
        let model = &self.header.model;
        model.validate().map_err(WeightsError::BadConfig)?;
        let empty = || WeightsError::MissingTensor(format!("{DISCRIMINATOR_PREFIX}*"));
        if !self.has_part(DISCRIMINATOR_PREFIX) {
            return Err(empty());
        }
        Ok(match model.init_discriminator(device).ok_or_else(empty)? {
            Discriminator::Dcgan(d) => {
                Discriminator::Dcgan(self.load_part(d, DISCRIMINATOR_PREFIX)?)
            }
            Discriminator::Mlp(d) => Discriminator::Mlp(self.load_part(d, DISCRIMINATOR_PREFIX)?),
        })
    }

    /// The discriminator this file holds for `model`'s generator (a file of the page's
    /// `NAME.discriminator.safetensors` kind), refused when it was trained for another
    /// architecture.
    pub fn discriminator_for(
        &self,
        model: &ModelFile,
        device: &Device,
    ) -> Result<Discriminator, WeightsError> {
        if self.header.model != model.header.model {
            return Err(WeightsError::OtherArchitecture);
        }
        self.discriminator(device)
    }

    /// Whether the file holds tensors under `prefix` (e.g. a discriminator in a checkpoint).
    pub fn has_part(&self, prefix: &str) -> bool {
        self.tensors.keys().any(|k| k.starts_with(prefix))
    }

    /// Fills `module` with the tensors under `prefix`, after checking that every tensor it
    /// needs is present with the right shape and that the file holds nothing it would not use.
    pub fn load_part<M: Module>(&self, mut module: M, prefix: &str) -> Result<M, WeightsError> {
        let expected = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false);
        let mut wanted = Vec::with_capacity(expected.len());
        for slot in &expected {
            let key = format!("{prefix}{}", slot.name);
            let stored = self
                .tensors
                .get(&key)
                .ok_or_else(|| WeightsError::MissingTensor(key.clone()))?;
            if stored.shape != slot.shape.as_slice() {
                return Err(WeightsError::WrongShape {
                    tensor: key,
                    expected: slot.shape.as_slice().to_vec(),
                    found: stored.shape.clone(),
                });
            }
            let data = TensorData::new(stored.values.clone(), stored.shape.clone());
            wanted.push(bridge::from_data(data, slot.name.clone(), None));
        }
        let known: Vec<String> = expected
            .iter()
            .map(|s| format!("{prefix}{}", s.name))
            .collect();
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|k| k.starts_with(prefix) && !known.contains(k))
        {
            return Err(WeightsError::UnexpectedTensor(extra.clone()));
        }
        let result = module.apply(wanted, None, Some(Box::new(PyTorchToBurnAdapter)), false);
        if let Some(problem) = result.errors.first() {
            return Err(WeightsError::Internal(problem.to_string()));
        }
        if let Some((name, why)) = result.missing.first() {
            return Err(WeightsError::Internal(format!(
                "tensor {name} was not applied: {why}"
            )));
        }
        Ok(module)
    }
}

fn parse_header(json: &str) -> Result<Header, WeightsError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| WeightsError::BadHeader(e.to_string()))?;
    // The version is checked before anything else so that a newer file is reported as such,
    // not as whatever field this version happens not to understand.
    let version = value.get("format_version").and_then(|v| v.as_u64());
    match version {
        None => return Err(WeightsError::BadHeader("no format_version".into())),
        Some(v) if v > FORMAT_VERSION as u64 => {
            return Err(WeightsError::NewerVersion {
                found: v,
                supported: FORMAT_VERSION,
            });
        }
        Some(_) => {}
    }
    let family = value.pointer("/model/family").and_then(|f| f.as_str());
    match family {
        None => return Err(WeightsError::BadHeader("no model.family".into())),
        Some(f) if !FAMILIES.contains(&f) => {
            return Err(WeightsError::UnknownFamily(f.to_string()));
        }
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|e| WeightsError::BadHeader(e.to_string()))
}

/// A tensor's little-endian bytes as f32 values; an unsupported dtype is an error naming it.
fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, WeightsError> {
    crate::tensor_bytes::to_f32(dtype, bytes).ok_or_else(|| WeightsError::UnsupportedDtype {
        tensor: name.to_string(),
        dtype: format!("{dtype:?}"),
    })
}

/// An int8 tensor times its per-slice scales.
fn dequantize(
    name: &str,
    view: &safetensors::tensor::TensorView,
    file: &SafeTensors,
) -> Result<Vec<f32>, WeightsError> {
    let scale_name = format!("{name}{INT8_SCALE_SUFFIX}");
    let scales = file
        .tensor(&scale_name)
        .map_err(|_| WeightsError::MissingTensor(scale_name.clone()))?;
    let scales = to_f32(&scale_name, scales.dtype(), scales.data())?;
    let rows = view.shape().first().copied().unwrap_or(0);
    if scales.len() != rows || rows == 0 {
        return Err(WeightsError::WrongShape {
            tensor: scale_name,
            expected: vec![rows],
            found: vec![scales.len()],
        });
    }
    Ok(int8_values(view.data(), &scales))
}

/// Int8 values times one scale per slice of the first dimension.
fn int8_values(quantized: &[u8], scales: &[f32]) -> Vec<f32> {
    let per_row = (quantized.len() / scales.len().max(1)).max(1);
    (quantized.iter().enumerate())
        .map(|(i, &q)| q as i8 as f32 * scales[i / per_row])
        .collect()
}

/// Symmetric int8 per slice of the first dimension: scale = max|w| / 127.
fn quantize(shape: &[usize], values: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let rows = shape[0].max(1);
    let per_row = values.len() / rows;
    let mut quantized = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks(per_row.max(1)) {
        let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        quantized.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8),
        );
        scales.push(scale);
    }
    (quantized, scales)
}

fn half_bytes(name: &str, values: &[f32]) -> Result<Vec<u8>, WeightsError> {
    let halves: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
    if let Some(i) = halves.iter().position(|h| !h.is_finite()) {
        return Err(WeightsError::F16Overflow {
            tensor: name.to_string(),
            value: values[i],
        });
    }
    Ok(halves.iter().flat_map(|h| h.to_le_bytes()).collect())
}

/// One network's tensors in file layout, gathered for writing.
pub struct Part {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// Written as the difference from another part ([`Part::stored_as_delta`]).
    delta: Option<DeltaOf>,
}

impl Part {
    /// Reads `module`'s tensors (synchronously: native devices, or the CPU backend in wasm).
    pub fn of<M: Module>(module: &M, prefix: &str) -> Result<Self, WeightsError> {
        let mut tensors = Vec::new();
        for tensor in module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false) {
            let name = format!("{prefix}{}", tensor.name);
            let shape = tensor.shape.as_slice().to_vec();
            let data =
                bridge::into_data(tensor).map_err(|e| WeightsError::Internal(e.to_string()))?;
            let values = data
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| WeightsError::Internal(format!("{e:?}")))?;
            tensors.push((name, shape, values));
        }
        Ok(Self {
            tensors,
            delta: None,
        })
    }

    /// This part (named under `target`) written as its difference from the part under
    /// `base` in the same file, as the base is stored: int8 per slice for weights, f32 for
    /// the rest. For a network near the base (a generator beside its moving average) that is
    /// half of f16's size at about f16's precision.
    pub fn stored_as_delta(self, target: &str, base: &str) -> Self {
        let delta = DeltaOf {
            target: target.to_string(),
            base: base.to_string(),
        };
        Self {
            delta: Some(delta),
            ..self
        }
    }

    /// The generator of any family, under its family's prefix.
    pub fn generator(generator: &Generator, model: &ModelConfig) -> Result<Self, WeightsError> {
        let prefix = generator_prefix(model);
        match generator {
            Generator::Dcgan(g) => Self::of(g, prefix),
            Generator::Mlp(g) => Self::of(g, prefix),
            Generator::Vae(d) => Self::of(d, prefix),
        }
    }
}

/// The same model file (tensors byte for byte, training state kept) with a new header:
/// how `eval fid --record` writes its numbers into a model card.
pub fn replace_header(bytes: &[u8], header: &Header) -> Result<Vec<u8>, WeightsError> {
    let parsed = SafeTensors::deserialize(bytes).map_err(|e| error::classify(bytes, e))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| error::classify(bytes, e))?;
    let mut metadata = metadata.metadata().clone().unwrap_or_default();
    if !metadata.contains_key(METADATA_KEY) {
        return Err(WeightsError::NotAModel(
            "a PyTorch state_dict has no retrato header to record into".into(),
        ));
    }
    let json = serde_json::to_string(header).map_err(|e| WeightsError::Internal(e.to_string()))?;
    metadata.insert(METADATA_KEY.to_string(), json);
    safetensors::serialize(parsed.tensors(), Some(metadata))
        .map_err(|e| WeightsError::Internal(e.to_string()))
}

/// Serialises a model file. Values that f16 cannot hold are an error, not a silent inf.
pub fn encode(header: &Header, parts: &[Part]) -> Result<Vec<u8>, WeightsError> {
    encode_checkpoint(header, parts, None, &[])
}

/// Serialises a model file that also carries training state (JSON and byte blobs).
pub fn encode_checkpoint(
    header: &Header,
    parts: &[Part],
    training: Option<&str>,
    state: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, WeightsError> {
    let mut buffers: Vec<TensorBytes> = Vec::new();
    let mut deltas = Vec::new();
    for part in parts {
        match &part.delta {
            None => {
                for (name, shape, values) in &part.tensors {
                    buffers.extend(stored_tensor(header.storage, name, shape, values)?);
                }
            }
            Some(delta) => {
                for (name, shape, values) in &part.tensors {
                    let base = delta_base(parts, delta, header.storage, name, shape)?;
                    let difference: Vec<f32> =
                        values.iter().zip(&base).map(|(v, b)| v - b).collect();
                    let storage = match shape.len() {
                        2.. => Storage::Int8,
                        _ => Storage::F32,
                    };
                    let stored_name = format!("{DELTA_PREFIX}{name}");
                    buffers.extend(stored_tensor(storage, &stored_name, shape, &difference)?);
                }
                deltas.push(delta.clone());
            }
        }
    }
    let mut header = header.clone();
    if header.storage == Storage::Int8 {
        header.format_version = header.format_version.max(INT8_FORMAT_VERSION);
    }
    if !deltas.is_empty() {
        header.format_version = FORMAT_VERSION;
    }
    let blobs = state.iter().map(|(name, bytes)| {
        let name = format!("{STATE_PREFIX}{name}");
        (name, Dtype::U8, vec![bytes.len()], bytes.as_slice())
    });
    let tensors = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| (name.clone(), *dtype, shape.clone(), bytes.as_slice()));
    let all: Vec<_> = tensors.chain(blobs).collect();
    let views = all
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WeightsError::Internal(e.to_string()))?;
    let json = serde_json::to_string(&header).map_err(|e| WeightsError::Internal(e.to_string()))?;
    let mut metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    if let Some(training) = training {
        metadata.insert(TRAINING_KEY.to_string(), training.to_string());
    }
    if !deltas.is_empty() {
        let json =
            serde_json::to_string(&deltas).map_err(|e| WeightsError::Internal(e.to_string()))?;
        metadata.insert(DELTAS_KEY.to_string(), json);
    }
    safetensors::serialize(views, Some(metadata)).map_err(|e| WeightsError::Internal(e.to_string()))
}

/// A tensor as written: name, type, shape, little-endian bytes.
type TensorBytes = (String, Dtype, Vec<usize>, Vec<u8>);

/// One tensor as written under `storage`: its bytes (and an int8 tensor's scales).
fn stored_tensor(
    storage: Storage,
    name: &str,
    shape: &[usize],
    values: &[f32],
) -> Result<Vec<TensorBytes>, WeightsError> {
    Ok(match (storage, shape.len()) {
        (Storage::F32, _) => {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            vec![(name.to_string(), Dtype::F32, shape.to_vec(), bytes)]
        }
        (Storage::Int8, 2..) => {
            let (quantized, scales) = quantize(shape, values);
            let scales = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
            let scale_name = format!("{name}{INT8_SCALE_SUFFIX}");
            vec![
                (name.to_string(), Dtype::I8, shape.to_vec(), quantized),
                (scale_name, Dtype::F32, vec![shape[0]], scales),
            ]
        }
        (Storage::F16 | Storage::Int8, _) => {
            vec![(
                name.to_string(),
                Dtype::F16,
                shape.to_vec(),
                half_bytes(name, values)?,
            )]
        }
    })
}

/// The base values a delta tensor is taken from, as a reader will see them (rounded as
/// `storage` stores them), so that the rounding of the base does not add to the delta's.
fn delta_base(
    parts: &[Part],
    delta: &DeltaOf,
    storage: Storage,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, WeightsError> {
    let base_name = delta::base_name(delta, name)
        .ok_or_else(|| WeightsError::Internal(format!("{name} is not under {}", delta.target)))?;
    let (_, base_shape, values) = (parts.iter())
        .filter(|p| p.delta.is_none())
        .flat_map(|p| &p.tensors)
        .find(|(n, _, _)| *n == base_name)
        .ok_or_else(|| WeightsError::MissingTensor(base_name.clone()))?;
    if base_shape != shape {
        return Err(WeightsError::WrongShape {
            tensor: base_name,
            expected: shape.to_vec(),
            found: base_shape.clone(),
        });
    }
    Ok(match (storage, shape.len()) {
        (Storage::F32, _) => values.clone(),
        (Storage::Int8, 2..) => {
            let (quantized, scales) = quantize(shape, values);
            int8_values(&quantized, &scales)
        }
        (Storage::F16 | Storage::Int8, _) => (values.iter())
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect(),
    })
}
