//! Where a run keeps what it makes: natively a run folder ([`super::folder::RunFolder`]),
//! in the page memory ([`MemoryStore`]; the page itself keeps checkpoints in IndexedDB).

use burn::tensor::Device;

use crate::train::Trainer;
use crate::train::checkpoint::RunInfo;
use crate::weights::Evaluation;

pub trait RunStore {
    /// Keeps a checkpoint (the newest is what a divergence rolls back to); returns where.
    fn save_checkpoint(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<String, String>;
    /// The newest checkpoint, on `device`, and where it was; None when there is none.
    fn latest_checkpoint(
        &self,
        device: &Device,
    ) -> Result<Option<(Trainer, RunInfo, String)>, String>;
    /// Keeps the checkpoint with the run's best FID apart from the others.
    fn save_best(&mut self, _trainer: &Trainer, _info: &RunInfo) -> Result<(), String> {
        Ok(())
    }
    /// One step's metrics: `values` in the run's columns (NaN for a term not measured).
    fn record(
        &mut self,
        _step: u64,
        _epoch: u64,
        _values: &[f64],
        _images_per_second: f64,
        _wall_seconds: f64,
    ) -> Result<(), String> {
        Ok(())
    }
    /// Forgets the records after `step` (a rollback returned there).
    fn restart_records(&mut self, _step: u64) -> Result<(), String> {
        Ok(())
    }
    /// End of `epoch`: the fixed-latent sample grid when `samples`, plots.
    fn epoch_done(
        &mut self,
        _trainer: &Trainer,
        _epoch: u64,
        _samples: bool,
    ) -> Result<(), String> {
        Ok(())
    }
    /// End of the session (in `epoch`): the last checkpoint, grid and the model file.
    fn finish(
        &mut self,
        _trainer: &Trainer,
        _info: &RunInfo,
        _epoch: u64,
        _evaluation: Option<Evaluation>,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// The newest checkpoint as a copy of the trainer (tensors are shared, not copied), so a
/// diverged fine-tuning in the page rolls back without a file system.
#[derive(Default)]
pub struct MemoryStore {
    latest: Option<(Trainer, RunInfo)>,
}

impl RunStore for MemoryStore {
    fn save_checkpoint(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<String, String> {
        self.latest = Some((trainer.clone(), info.clone()));
        Ok(memory_label(trainer))
    }

    fn latest_checkpoint(
        &self,
        _device: &Device,
    ) -> Result<Option<(Trainer, RunInfo, String)>, String> {
        Ok(self.latest.clone().map(|(trainer, info)| {
            let label = memory_label(&trainer);
            (trainer, info, label)
        }))
    }
}

/// Where [`MemoryStore`]'s checkpoint is, as a person reads it.
fn memory_label(trainer: &Trainer) -> String {
    format!("the copy kept in memory at step {}", trainer.step)
}

/// A data-parallel job's store: rank 0 writes the run's files; every other rank keeps a copy
/// in memory, taken at the same steps, so that a rollback brings all ranks to the same state.
// One per run: boxing the larger variant would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum Ranked<S> {
    Writer(S),
    Follower(MemoryStore),
}

impl<S> Ranked<S> {
    /// The files' store, on the rank that writes them.
    pub fn writer(&self) -> Option<&S> {
        match self {
            Ranked::Writer(store) => Some(store),
            Ranked::Follower(_) => None,
        }
    }
}

impl<S: RunStore> RunStore for Ranked<S> {
    fn save_checkpoint(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<String, String> {
        match self {
            Ranked::Writer(store) => store.save_checkpoint(trainer, info),
            Ranked::Follower(memory) => memory.save_checkpoint(trainer, info),
        }
    }

    fn latest_checkpoint(
        &self,
        device: &Device,
    ) -> Result<Option<(Trainer, RunInfo, String)>, String> {
        match self {
            Ranked::Writer(store) => store.latest_checkpoint(device),
            Ranked::Follower(memory) => memory.latest_checkpoint(device),
        }
    }

    fn save_best(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<(), String> {
        match self {
            Ranked::Writer(store) => store.save_best(trainer, info),
            Ranked::Follower(_) => Ok(()),
        }
    }

    fn record(
        &mut self,
        step: u64,
        epoch: u64,
        values: &[f64],
        images_per_second: f64,
        wall_seconds: f64,
    ) -> Result<(), String> {
        match self {
            Ranked::Writer(store) => {
                store.record(step, epoch, values, images_per_second, wall_seconds)
            }
            Ranked::Follower(_) => Ok(()),
        }
    }

    fn restart_records(&mut self, step: u64) -> Result<(), String> {
        match self {
            Ranked::Writer(store) => store.restart_records(step),
            Ranked::Follower(_) => Ok(()),
        }
    }

    fn epoch_done(&mut self, trainer: &Trainer, epoch: u64, samples: bool) -> Result<(), String> {
        match self {
            Ranked::Writer(store) => store.epoch_done(trainer, epoch, samples),
            Ranked::Follower(_) => Ok(()),
        }
    }

    fn finish(
        &mut self,
        trainer: &Trainer,
        info: &RunInfo,
        epoch: u64,
        evaluation: Option<Evaluation>,
    ) -> Result<(), String> {
        match self {
            Ranked::Writer(store) => store.finish(trainer, info, epoch, evaluation),
            Ranked::Follower(_) => Ok(()),
        }
    }
}
