//! The ranks of an MPI job as the library's [`Collective`] (feature `distributed`): what
//! `mpirun -np N retrato train ...` (or Slurm's `srun`) trains with. burn 0.22 has no
//! cross-process collective of its own; MPI's all-reduce and broadcast are the transport.

use std::cell::Cell;
use std::time::Instant;

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};

use crate::train::collective::Collective;

/// The job's ranks; MPI is finalised when this is dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    /// Seconds spent in collectives so far.
    busy: Cell<f64>,
    // Declared last: dropped after `world`.
    _universe: Universe,
}

impl Mpi {
    /// Joins the job (a job of one when the program was not started by mpirun); None when
    /// MPI was already initialised.
    pub fn join() -> Option<Self> {
        // Only this thread calls MPI; burn's worker threads never do.
        let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)?;
        Some(Self {
            world: universe.world(),
            busy: Cell::new(0.0),
            _universe: universe,
        })
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum(&self, values: &mut [f32]) {
        let start = Instant::now();
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
        self.busy
            .set(self.busy.get() + start.elapsed().as_secs_f64());
    }

    fn broadcast(&self, bytes: &mut Vec<u8>) {
        let start = Instant::now();
        let root = self.world.process_at_rank(0);
        let mut length = bytes.len() as u64;
        root.broadcast_into(&mut length);
        bytes.resize(length as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        self.busy
            .set(self.busy.get() + start.elapsed().as_secs_f64());
    }

    fn communication_seconds(&self) -> f64 {
        self.busy.get()
    }
}
