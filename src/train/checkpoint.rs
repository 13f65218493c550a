//! A training checkpoint is a model file (f32) that also carries what resuming needs: the
//! discriminator (or the VAE's encoder), the generator's moving average, both optimizers'
//! state, the parameter ids that state is keyed by, the step and the learning-rate scale.
//! One file, so writing it atomically (temp file, fsync, rename) is enough to never leave a
//! half-written checkpoint. `retrato sample` and `info` read it like any model file.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Bytes, Device, Tensor};
use burn_store::burn_pack::{self, DType};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::params::{AssignIds, ParamIds, Replace, Values, read_values};
use super::trainer::{Networks, Trainer, optimizer};
use crate::model::{Generator, ModelConfig, ModuleInspect, ModuleTransform};
use crate::weights::DISCRIMINATOR_PREFIX;
use crate::weights::{self, Header, ModelFile, Part, WeightsError, generator_prefix};

/// Prefix of the moving-average generator's tensors.
const EMA_PREFIX: &str = "ema.";

/// Tensor-name prefix of the moving-average generator of `model` in a checkpoint.
fn ema_prefix(model: &ModelConfig) -> String {
    format!("{EMA_PREFIX}{}", generator_prefix(model))
}

/// Tensor-name prefix of the generator to sample from in `file`: a checkpoint's moving
/// average when it has one, else the generator itself.
pub fn sampling_prefix(file: &ModelFile) -> String {
    let ema = ema_prefix(&file.header.model);
    match file.has_part(&ema) {
        true => ema,
        false => generator_prefix(&file.header.model).to_string(),
    }
}

/// The generator to sample from in `file` (see [`sampling_prefix`]): what `sample`, `eval`,
/// `invert` and widening draw from a checkpoint as from a model file.
pub fn sampling_generator(file: &ModelFile, device: &Device) -> Result<Generator, WeightsError> {
    file.generator_under(&sampling_prefix(file), device)
}

/// The run-level state beside the networks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Divergence rollbacks so far.
    pub rollbacks: usize,
    /// Training time so far, over all sessions of the run.
    pub elapsed_seconds: f64,
    /// Where the images came from (for the model card).
    pub dataset: String,
    /// Best FID so far and its step (`run.fid_epochs`): its checkpoint is best-fid.safetensors.
    #[serde(default)]
    pub best_fid: Option<(f64, u64)>,
    /// The model file a transfer / fine-tuning run started from (`train --from`).
    #[serde(default)]
    pub started_from: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct TrainingState {
    config: TrainConfig,
    step: u64,
    lr_scale: f64,
    /// ADA's adapted probability of the geometric transforms (`ada_target > 0`).
    #[serde(default)]
    augment_p: Option<f32>,
    /// LeCam's running averages of D's outputs (`lecam_weight > 0`).
    #[serde(default)]
    lecam_averages: Option<Vec<f32>>,
    info: RunInfo,
    /// Parameter ids per network, in visiting order (optimizer state is keyed by them).
    param_ids: BTreeMap<String, Vec<u64>>,
}

/// Collects one network's tensors under a prefix (works on any family's module).
struct Collect {
    prefix: String,
    part: Option<Result<Part, WeightsError>>,
}

impl ModuleInspect for Collect {
    fn inspect<M: Module>(&mut self, module: &M) {
        self.part = Some(Part::of(module, &self.prefix));
    }
}

fn part_of_generator(generator: &Generator, prefix: String) -> Result<Part, WeightsError> {
    let mut collect = Collect { prefix, part: None };
    generator.inspect(&mut collect);
    collect.part.expect("inspected")
}

/// Fills a network of any family from a file part.
pub(super) struct Load<'a> {
    file: &'a ModelFile,
    prefix: String,
    pub error: Option<WeightsError>,
}

impl<'a> Load<'a> {
    pub fn new(file: &'a ModelFile, prefix: &str) -> Self {
        Self {
            file,
            prefix: prefix.to_string(),
            error: None,
        }
    }
}

impl ModuleTransform for Load<'_> {
    fn apply<M: Module>(&mut self, module: M) -> M {
        match self.file.load_part(module.clone(), &self.prefix) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.error = Some(e);
                module
            }
        }
    }
}

fn ids(inspect: impl FnOnce(&mut ParamIds)) -> Vec<u64> {
    let mut ids = ParamIds::default();
    inspect(&mut ids);
    ids.0
}

fn optimizer_bytes(optimizer: &ModuleOptimizer) -> Result<Vec<u8>, WeightsError> {
    let bytes = optimizer
        .into_bytes()
        .map_err(|e| WeightsError::Internal(format!("optimizer state: {e:?}")))?;
    Ok(bytes.to_vec())
}

/// The checkpoint of `trainer` as file bytes: everything in f32, exact resume.
pub fn encode(trainer: &Trainer, info: &RunInfo) -> Result<Vec<u8>, WeightsError> {
    encode_as(trainer, info, weights::Storage::F32, OptimizerState::Exact)
}

/// What a reduced checkpoint keeps of the optimizers' state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moments {
    /// Adam's moments in bf16: f32's range with 8 bits of precision. f16 would not do: the
    /// second moment (squared gradients, ~1e-10 and below) underflows it.
    Bf16,
    /// None: the moments restart on resume (as after a change of learning rate).
    Drop,
}

/// How the optimizers' state is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptimizerState {
    Exact,
    Reduced(Moments),
}

/// Note in a reduced checkpoint's header, which `describe` reads back.
const REDUCED_NOTE: &str = "retrato reduced training checkpoint";

/// A reduced checkpoint: the same run state as [`encode`] (config, step, learning-rate
/// scale, run info, best FID, G, D and the EMA of G) with D and the EMA in f16 (f32 when a
/// value is beyond f16), the trained G as int8 steps from its EMA (it stays near it; int8 of
/// the difference is as close as f16 of the weights) and Adam's moments in bf16 or left out:
/// about a quarter of the full checkpoint (without moments), small enough to keep in git
/// and continue a run on another machine. `train --resume FILE` reads it like a full one.
pub fn encode_reduced(
    trainer: &Trainer,
    info: &RunInfo,
    moments: Moments,
) -> Result<Vec<u8>, WeightsError> {
    let reduced = OptimizerState::Reduced(moments);
    match encode_as(trainer, info, weights::Storage::F16, reduced) {
        Err(WeightsError::F16Overflow { .. }) => {
            encode_as(trainer, info, weights::Storage::F32, reduced)
        }
        result => result,
    }
}

/// One line on what a checkpoint holds: full, or reduced and how.
pub fn describe(file: &ModelFile) -> String {
    match file.header.notes.starts_with(REDUCED_NOTE) {
        true => file.header.notes.clone(),
        false => "full training checkpoint (f32, optimizer state)".into(),
    }
}

fn encode_as(
    trainer: &Trainer,
    info: &RunInfo,
    storage: weights::Storage,
    optimizer_state: OptimizerState,
) -> Result<Vec<u8>, WeightsError> {
    let model = &trainer.config.model;
    let mut header = Header::new(model.clone());
    header.storage = storage;
    header.dataset = info.dataset.clone();
    header.steps = trainer.step;
    let optimizer_blob = |trained: &ModuleOptimizer| match optimizer_state {
        OptimizerState::Exact => optimizer_bytes(trained),
        OptimizerState::Reduced(Moments::Bf16) => {
            repack_floats(optimizer_bytes(trained)?, DType::BF16)
        }
        OptimizerState::Reduced(Moments::Drop) => optimizer_bytes(&optimizer(&trainer.config)),
    };
    // A reduced checkpoint keeps the trained generator as int8 steps from its average.
    let reduced = matches!(optimizer_state, OptimizerState::Reduced(_));
    let steps_from_ema = reduced && trainer.ema.is_some();
    let networks = match steps_from_ema {
        true => format!("{storage:?} networks (G as int8 steps from its average)"),
        false => format!("{storage:?} networks"),
    };
    header.notes = match optimizer_state {
        OptimizerState::Exact => "retrato training checkpoint".into(),
        OptimizerState::Reduced(Moments::Bf16) => {
            format!("{REDUCED_NOTE}: {networks}, Adam moments in bf16")
        }
        OptimizerState::Reduced(Moments::Drop) => {
            format!("{REDUCED_NOTE}: {networks}, no optimizer moments (they restart)")
        }
    };
    let mut param_ids = BTreeMap::new();
    let mut parts = Vec::new();
    let mut state = Vec::new();
    match &trainer.networks {
        Networks::Gan {
            generator,
            discriminator,
            optimizer_g,
            optimizer_d,
        } => {
            // valid() first: it folds batch norm's pending running-statistics updates in.
            let trained = Part::generator(&generator.valid(), model)?;
            parts.push(match steps_from_ema {
                true => trained.stored_as_delta(generator_prefix(model), &ema_prefix(model)),
                false => trained,
            });
            let mut collect = Collect {
                prefix: DISCRIMINATOR_PREFIX.into(),
                part: None,
            };
            discriminator.valid().inspect(&mut collect);
            parts.push(collect.part.expect("inspected")?);
            param_ids.insert("generator".into(), ids(|i| generator.inspect(i)));
            param_ids.insert("discriminator".into(), ids(|i| discriminator.inspect(i)));
            state.push(("optimizer_g".into(), optimizer_blob(optimizer_g)?));
            state.push(("optimizer_d".into(), optimizer_blob(optimizer_d)?));
        }
        Networks::Vae { vae, optimizer } => {
            parts.push(Part::of(&vae.valid(), "")?);
            param_ids.insert("vae".into(), ids(|i| i.inspect(vae)));
            state.push(("optimizer".into(), optimizer_blob(optimizer)?));
        }
    }
    if let Some(ema) = &trainer.ema {
        let prefix = ema_prefix(model);
        parts.push(part_of_generator(ema, prefix)?);
    }
    let training = TrainingState {
        config: trainer.config.clone(),
        step: trainer.step,
        lr_scale: trainer.lr_scale,
        augment_p: (trainer.augment_p.clone()).map(|p| p.into_scalar::<f32>()),
        lecam_averages: (trainer.lecam_averages.clone())
            .map(|a| a.into_data().convert::<f32>().try_into_vec::<f32>())
            .transpose()
            .map_err(|e| WeightsError::Internal(format!("{e:?}")))?,
        info: info.clone(),
        param_ids,
    };
    let json =
        serde_json::to_string(&training).map_err(|e| WeightsError::Internal(e.to_string()))?;
    weights::encode_checkpoint(&header, &parts, Some(&json), &state)
}

/// The optimizer state (burnpack bytes) with every f32 / bf16 tensor converted to `to`:
/// bf16 to store a reduced checkpoint's moments, f32 to train with them again.
fn repack_floats(bytes: Vec<u8>, to: DType) -> Result<Vec<u8>, WeightsError> {
    let bad = |e: burn_pack::Error| WeightsError::BadHeader(format!("optimizer state: {e}"));
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(bad)?;
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let mut tensors = Vec::new();
    for tensor in reader.into_tensors().map_err(bad)? {
        let (name, dtype, shape, param_id, bytes) = tensor.into_parts().map_err(bad)?;
        let (dtype, bytes) = match (dtype, to) {
            (DType::F32, DType::BF16) => {
                let halves = bytes.chunks_exact(4).flat_map(|c| {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    half::bf16::from_f32(v).to_le_bytes()
                });
                (to, halves.collect::<Vec<u8>>())
            }
            (DType::BF16, DType::F32) => {
                let floats = bytes.chunks_exact(2).flat_map(|c| {
                    half::bf16::from_le_bytes([c[0], c[1]])
                        .to_f32()
                        .to_le_bytes()
                });
                (to, floats.collect::<Vec<u8>>())
            }
            (dtype, _) => (dtype, bytes.to_vec()),
        };
        let bytes = Bytes::from_bytes_vec(bytes);
        tensors.push(burn_pack::Tensor::new(name, dtype, shape, param_id, bytes));
    }
    let mut writer = burn_pack::Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    Ok(writer.into_bytes().map_err(bad)?.to_vec())
}

/// The page-ready model file of a trainer on a device that reads synchronously (native, or
/// the CPU copy a portable checkpoint decodes to): the moving-average generator in f16, or
/// f32 when a weight is beyond f16's range; returns the bytes and the storage used.
pub fn model_file(
    trainer: &Trainer,
    mut header: Header,
) -> Result<(Vec<u8>, weights::Storage), WeightsError> {
    let part = Part::generator(&trainer.sampling_generator(), &trainer.config.model)?;
    header.storage = weights::Storage::F16;
    match weights::encode(&header, std::slice::from_ref(&part)) {
        Err(WeightsError::F16Overflow { .. }) => {
            header.storage = weights::Storage::F32;
            Ok((weights::encode(&header, &[part])?, header.storage))
        }
        result => Ok((result?, header.storage)),
    }
}

/// A checkpoint of `trainer` that any device can write and read, the browser's GPU included:
/// the networks are read back asynchronously and copied to the CPU; the optimizers' state
/// is left out (it restarts on resume, as after `--set` of a new learning rate).
pub async fn encode_portable(trainer: &Trainer, info: &RunInfo) -> Result<Vec<u8>, String> {
    let cpu = Device::flex();
    let model = &trainer.config.model;
    let copy_generator = |g: &Generator| {
        let mut values = Values::default();
        g.valid().inspect(&mut values);
        values
    };
    let networks = match &trainer.networks {
        Networks::Gan { discriminator, .. } => {
            let g = read_values(copy_generator(&trainer.generator())).await?;
            let mut d_values = Values::default();
            discriminator.valid().inspect(&mut d_values);
            let d = read_values(d_values).await?;
            Networks::Gan {
                generator: model.init_generator(&cpu).transform(&mut Replace::new(g)),
                discriminator: (model.init_discriminator(&cpu).expect("GAN family"))
                    .transform(&mut Replace::new(d)),
                optimizer_g: optimizer(&trainer.config),
                optimizer_d: optimizer(&trainer.config),
            }
        }
        Networks::Vae { .. } => return Err("portable checkpoints are for GAN fine-tuning".into()),
    };
    let ema = match &trainer.ema {
        Some(ema) => {
            let values = read_values(copy_generator(ema)).await?;
            Some(
                model
                    .init_generator(&cpu)
                    .transform(&mut Replace::new(values)),
            )
        }
        None => None,
    };
    let mut copy = Trainer::from_networks(
        trainer.config.clone(),
        networks,
        ema,
        trainer.step,
        trainer.lr_scale,
        &cpu,
    );
    if let Some(p) = &trainer.augment_p {
        let p = read_values(Values(vec![p.clone()])).await?.concat();
        copy.augment_p = Some(Tensor::from_floats(p.as_slice(), &cpu));
    }
    if let Some(averages) = &trainer.lecam_averages {
        let averages = read_values(Values(vec![averages.clone()])).await?.concat();
        copy.lecam_averages = Some(Tensor::from_floats(averages.as_slice(), &cpu));
    }
    encode(&copy, info).map_err(|e| e.to_string())
}

/// A trainer and its run info from checkpoint bytes, on `device` (an autodiff device).
pub fn decode(bytes: &[u8], device: &Device) -> Result<(Trainer, RunInfo), WeightsError> {
    let file = ModelFile::from_bytes(bytes)?;
    let json = file.training.as_deref().ok_or_else(|| {
        WeightsError::NotAModel("a model file, not a training checkpoint (no run state)".into())
    })?;
    let training: TrainingState =
        serde_json::from_str(json).map_err(|e| WeightsError::BadHeader(e.to_string()))?;
    let config = training.config;
    config.validate().map_err(WeightsError::BadConfig)?;
    let blob = |name: &str| {
        let bytes = file.state.get(name).ok_or_else(|| {
            WeightsError::MissingTensor(format!("{}{name}", weights::STATE_PREFIX))
        })?;
        // A reduced checkpoint's bf16 moments train in f32 again.
        repack_floats(bytes.clone(), DType::F32).map(Bytes::from_bytes_vec)
    };
    let restore = |name: &str, bytes: Bytes| {
        optimizer(&config)
            .from_bytes(bytes)
            .map_err(|e| WeightsError::BadHeader(format!("{name} state: {e:?}")))
    };
    let id_list = |name: &str| training.param_ids.get(name).cloned().unwrap_or_default();
    let load = |prefix: &str| Load::new(&file, prefix);
    let networks = match &config.model {
        ModelConfig::Vae(c) => {
            let vae = c.init(device);
            let encoder = file.load_part(vae.encoder, "encoder.")?;
            let decoder = file.load_part(vae.decoder, "decoder.")?;
            let vae = crate::model::vae::Vae { encoder, decoder };
            let vae = AssignIds::new(id_list("vae")).apply(vae);
            Networks::Vae {
                vae,
                optimizer: restore("optimizer", blob("optimizer")?)?,
            }
        }
        model => {
            let mut loader = load(generator_prefix(model));
            let generator = model.init_generator(device).transform(&mut loader);
            let mut d_loader = load(DISCRIMINATOR_PREFIX);
            let discriminator = model
                .init_discriminator(device)
                .expect("GAN family")
                .transform(&mut d_loader);
            if let Some(e) = loader.error.or(d_loader.error) {
                return Err(e);
            }
            Networks::Gan {
                generator: generator.transform(&mut AssignIds::new(id_list("generator"))),
                discriminator: discriminator
                    .transform(&mut AssignIds::new(id_list("discriminator"))),
                optimizer_g: restore("optimizer_g", blob("optimizer_g")?)?,
                optimizer_d: restore("optimizer_d", blob("optimizer_d")?)?,
            }
        }
    };
    let ema_prefix = ema_prefix(&config.model);
    let ema = match file.has_part(&ema_prefix) {
        true => {
            let mut loader = load(&ema_prefix);
            let plain = device.clone().inner();
            let ema = config.model.init_generator(&plain).transform(&mut loader);
            if let Some(e) = loader.error {
                return Err(e);
            }
            Some(ema)
        }
        false => None,
    };
    let mut trainer = Trainer::from_networks(
        config,
        networks,
        ema,
        training.step,
        training.lr_scale,
        device,
    );
    if let (Some(_), Some(p)) = (&trainer.augment_p, training.augment_p) {
        trainer.augment_p = Some(Tensor::from_floats([p], device));
    }
    if let (Some(_), Some(averages)) = (&trainer.lecam_averages, training.lecam_averages) {
        trainer.lecam_averages = Some(Tensor::from_floats(averages.as_slice(), device));
    }
    Ok((trainer, training.info))
}
