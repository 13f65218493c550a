//! Which ranks this process trains with: under `mpirun -np N` (feature `distributed`), the
//! MPI job's; otherwise none. Ranks other than 0 print nothing (rank 0 speaks for the job).

use anyhow::{Result, bail};
use retrato::train::collective::Ranks;

/// The job's ranks when there is more than one.
#[cfg(feature = "distributed")]
pub fn join() -> Result<Option<Ranks>> {
    use retrato::train::collective::Collective;
    let Some(mpi) = retrato::distributed::Mpi::join() else {
        bail!("MPI could not be initialised (already initialised in this process)");
    };
    if mpi.size() < 2 {
        return Ok(None);
    }
    if mpi.rank() != 0 {
        silence_stdout();
    }
    Ok(Some(std::rc::Rc::new(mpi)))
}

/// Without MPI support, a start by mpirun would make N copies each train the whole run and
/// write the same files: refuse with the way out.
#[cfg(not(feature = "distributed"))]
pub fn join() -> Result<Option<Ranks>> {
    let size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|key| std::env::var(key).ok()?.parse::<usize>().ok());
    if let Some(size) = size.filter(|&n| n > 1) {
        bail!(
            "started as one of {size} MPI processes, but this retrato was built without data-parallel training: build it with --features native,distributed"
        );
    }
    Ok(None)
}

/// Every rank trains on an equal shard of each batch.
pub fn check_batch(ranks: usize, batch: usize) -> Result<()> {
    if !batch.is_multiple_of(ranks) {
        bail!(
            "batch_size {batch} does not split into {ranks} equal shards: choose a multiple of {ranks} (--batch-size)"
        );
    }
    Ok(())
}

/// Points this process's stdout at /dev/null (its errors still reach stderr).
#[cfg(feature = "distributed")]
fn silence_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 on two open descriptors; stdout is replaced, `null` closes after.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}
