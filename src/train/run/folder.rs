//! A run folder, what `retrato train --out` fills: `checkpoints/step-*.safetensors` (written
//! atomically, the newest few kept, plus `best-fid.safetensors`), `metrics.csv`, `loss.png`,
//! `samples/epoch_*.png` from fixed latents, and at the end `model.safetensors` and the
//! reduced `resume.safetensors` another machine continues from.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::RunStore;
use super::metrics::Metrics;
use super::plot;
use crate::atomic::write_atomic;
use crate::image_grid::{png_bytes, square_grid, to_rgb8};
use crate::sample::{read, seeded_latents};
use crate::train::Trainer;
use crate::train::card::training_note;
use crate::train::checkpoint::{self, Moments, RunInfo};
use crate::weights::{Evaluation, Header, Storage};

/// The reduced checkpoint every run ends with (f16 networks, moments optional).
pub const REDUCED_CHECKPOINT: &str = "resume.safetensors";
/// The checkpoint with the run's best FID.
pub const BEST_FID_CHECKPOINT: &str = "best-fid.safetensors";
/// The page-ready model file.
pub const MODEL_FILE: &str = "model.safetensors";
/// Seed of the fixed latents behind every sample grid of a run.
const SAMPLE_SEED: u64 = 0x5EED;

pub struct RunFolder {
    pub dir: PathBuf,
    /// Step checkpoints kept (older ones are deleted).
    pub keep: usize,
    /// Whether the reduced checkpoint keeps Adam's moments (bf16).
    pub moments: Moments,
    metrics: Metrics,
    /// The last checkpoint written, and the size of the reduced one (after `finish`).
    pub last_checkpoint: Option<PathBuf>,
    pub reduced_bytes: usize,
    /// Set when the model file had to be stored as f32 (a weight beyond f16's range).
    pub model_storage: Option<Storage>,
}

impl RunFolder {
    /// Opens (or creates) `dir` for a run recording `columns`, keeping metrics rows up to
    /// `step` (a resumed run continues its curve instead of repeating it).
    pub fn open(dir: &Path, columns: &[String], step: u64, keep: usize) -> Result<Self, String> {
        std::fs::create_dir_all(dir.join("samples"))
            .map_err(|e| format!("{}: cannot create it: {e}", dir.display()))?;
        let metrics = Metrics::open(&dir.join("metrics.csv"), columns, Some(step))
            .map_err(|e| format!("{e:#}"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            keep,
            moments: Moments::Drop,
            metrics,
            last_checkpoint: None,
            reduced_bytes: 0,
            model_storage: None,
        })
    }

    /// The checkpoint a resumed run in `dir` continues from: `file` when given (a run
    /// continued in a new folder), else the folder's newest; refused when both or neither.
    pub fn resume_point(dir: &Path, file: Option<PathBuf>) -> Result<PathBuf, String> {
        match (file, Self::checkpoints(dir).pop()) {
            (Some(_), Some(_)) => Err(format!(
                "{}: already holds a run; continue it with --resume (no file), or choose another --out",
                dir.display()
            )),
            (Some(file), None) => Ok(file),
            (None, Some(latest)) => Ok(latest),
            (None, None) => Err(format!(
                "{}: no checkpoint to resume from",
                dir.join("checkpoints").display()
            )),
        }
    }

    /// Refuses to start a new run in a folder that holds one.
    pub fn check_empty(dir: &Path) -> Result<(), String> {
        match Self::checkpoints(dir).is_empty() {
            true => Ok(()),
            false => Err(format!(
                "{}: already holds a run; pass --resume to continue it, or choose another --out",
                dir.display()
            )),
        }
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// The run's step checkpoints, oldest first (names sort by step).
    pub fn checkpoints(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("checkpoints"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        let name = p.file_name().unwrap_or_default().to_string_lossy();
                        name.starts_with("step-") && name.ends_with(".safetensors")
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    fn plot(&mut self) -> Result<(), String> {
        let rows = self.metrics.rows().map_err(|e| format!("{e:#}"))?;
        let columns = &self.metrics.columns[2..self.metrics.columns.len() - 2];
        plot::draw(&self.dir.join("loss.png"), columns, &rows).map_err(|e| format!("{e:#}"))
    }

    /// The fixed-latent sample grid: the same portraits' evolution across epochs.
    fn write_samples(&self, trainer: &Trainer, epoch: u64) -> Result<(), String> {
        let generator = trainer.sampling_generator();
        let device = generator.device();
        let count = trainer.config.run.sample_count;
        let z = seeded_latents(&generator, SAMPLE_SEED, 0, count, &device);
        let (values, dims) = read(generator.generate(z));
        let path = self.dir.join(format!("samples/epoch_{epoch:04}.png"));
        write_atomic(&path, &png_bytes(&square_grid(&to_rgb8(&values, dims))))
    }

    /// The page-ready model file: f16, from the moving average when there is one.
    fn write_model(
        &mut self,
        trainer: &Trainer,
        info: &RunInfo,
        evaluation: Option<Evaluation>,
    ) -> Result<(), String> {
        let mut header = Header::new(trainer.config.model.clone());
        if let Some(evaluation) = evaluation {
            header.metrics = evaluation.metrics();
            header.evaluation = Some(evaluation);
        }
        header.dataset = info.dataset.clone();
        header.steps = trainer.step;
        header.created =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        header.notes = training_note(trainer, info, "with `retrato train`");
        let (bytes, storage) =
            checkpoint::model_file(trainer, header).map_err(|e| e.to_string())?;
        self.model_storage = Some(storage);
        write_atomic(&self.dir.join(MODEL_FILE), &bytes)
    }
}

/// A checkpoint file, decoded on `device`; the error names the file.
pub fn read_checkpoint(path: &Path, device: &Device) -> Result<(Trainer, RunInfo), String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
    checkpoint::decode(&bytes, device).map_err(|e| format!("{}: {e}", path.display()))
}

impl RunStore for RunFolder {
    /// Writes a checkpoint atomically, then deletes all but the newest `keep`.
    fn save_checkpoint(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<String, String> {
        let bytes = checkpoint::encode(trainer, info)
            .map_err(|e| format!("cannot write a checkpoint: {e}"))?;
        let path = (self.checkpoint_dir()).join(format!("step-{:09}.safetensors", trainer.step));
        write_atomic(&path, &bytes)?;
        let all = Self::checkpoints(&self.dir);
        for old in &all[..all.len().saturating_sub(self.keep)] {
            let _ = std::fs::remove_file(old);
        }
        self.last_checkpoint = Some(path.clone());
        Ok(path.display().to_string())
    }

    fn latest_checkpoint(
        &self,
        device: &Device,
    ) -> Result<Option<(Trainer, RunInfo, String)>, String> {
        let Some(latest) = Self::checkpoints(&self.dir).pop() else {
            return Ok(None);
        };
        let (trainer, info) = read_checkpoint(&latest, device)?;
        Ok(Some((trainer, info, latest.display().to_string())))
    }

    fn save_best(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<(), String> {
        let bytes = checkpoint::encode(trainer, info)
            .map_err(|e| format!("cannot write a checkpoint: {e}"))?;
        write_atomic(&self.checkpoint_dir().join(BEST_FID_CHECKPOINT), &bytes)
    }

    fn record(
        &mut self,
        step: u64,
        epoch: u64,
        values: &[f64],
        images_per_second: f64,
        wall_seconds: f64,
    ) -> Result<(), String> {
        (self.metrics)
            .append(step, epoch, values, images_per_second, wall_seconds)
            .map_err(|e| format!("{e:#}"))
    }

    fn restart_records(&mut self, step: u64) -> Result<(), String> {
        let columns = &self.metrics.columns[2..self.metrics.columns.len() - 2];
        self.metrics = Metrics::open(&self.dir.join("metrics.csv"), columns, Some(step))
            .map_err(|e| format!("{e:#}"))?;
        Ok(())
    }

    fn epoch_done(&mut self, trainer: &Trainer, epoch: u64, samples: bool) -> Result<(), String> {
        if samples {
            self.write_samples(trainer, epoch)?;
        }
        self.plot()
    }

    fn finish(
        &mut self,
        trainer: &Trainer,
        info: &RunInfo,
        epoch: u64,
        evaluation: Option<Evaluation>,
    ) -> Result<(), String> {
        self.metrics.flush().map_err(|e| format!("{e:#}"))?;
        self.plot()?;
        self.save_checkpoint(trainer, info)?;
        self.write_samples(trainer, epoch)?;
        self.write_model(trainer, info, evaluation)?;
        let reduced = checkpoint::encode_reduced(trainer, info, self.moments)
            .map_err(|e| format!("cannot write the reduced checkpoint: {e}"))?;
        write_atomic(&self.dir.join(REDUCED_CHECKPOINT), &reduced)?;
        self.reduced_bytes = reduced.len();
        Ok(())
    }
}
