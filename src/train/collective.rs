//! Data-parallel training across processes: every rank trains on its shard of each global
//! batch and the ranks average their gradients before each optimizer step, so N ranks take
//! the steps one process would take with the whole batch (exactly so for a model without
//! batch norm: batch norm keeps per-rank statistics, as PyTorch's DDP without SyncBN).
//! burn has no cross-process collective; the transport is the door's ([`Collective`]:
//! MPI natively with the `distributed` feature), so the library needs none.

use std::rc::Rc;

use burn::tensor::Device;

use super::Trainer;
use super::checkpoint::{self, RunInfo};

/// The operations data parallelism needs, over every rank of a job.
pub trait Collective {
    /// This process's place among the ranks, 0 for the one that writes files.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Replaces `values` on every rank by their element-wise sum over all ranks.
    fn sum(&self, values: &mut [f32]);
    /// Replaces `bytes` on every rank by rank 0's.
    fn broadcast(&self, bytes: &mut Vec<u8>);
    /// Seconds spent in [`Self::sum`] and [`Self::broadcast`] so far, waiting for the other
    /// ranks included (what data parallelism costs a step).
    fn communication_seconds(&self) -> f64 {
        0.0
    }
}

/// A job's ranks, shared by the trainer and the run loop.
pub type Ranks = Rc<dyn Collective>;

/// Replaces every rank's values by their mean over the ranks.
pub fn average(ranks: &dyn Collective, values: &mut [f32]) {
    ranks.sum(values);
    let scale = 1.0 / ranks.size() as f32;
    values.iter_mut().for_each(|v| *v *= scale);
}

/// Rank 0's trainer and run state on every rank (networks, average, optimizer state, step,
/// config), so that the ranks start alike; only rank 0 needs to have read a checkpoint or
/// initialised networks (`local`).
pub fn broadcast_trainer(
    ranks: &dyn Collective,
    local: Option<(Trainer, RunInfo)>,
    device: &Device,
) -> Result<(Trainer, RunInfo), String> {
    let mut bytes = match (ranks.rank(), &local) {
        (0, Some((trainer, info))) => {
            checkpoint::encode(trainer, info).map_err(|e| e.to_string())?
        }
        (0, None) => return Err("rank 0 has no trainer to share".into()),
        _ => Vec::new(),
    };
    ranks.broadcast(&mut bytes);
    match local {
        Some(local) if ranks.rank() == 0 => Ok(local),
        _ => checkpoint::decode(&bytes, device).map_err(|e| format!("rank 0's trainer: {e}")),
    }
}
