//! The library's data parallelism without MPI: two ranks on two threads of this process,
//! joined by an in-memory [`Collective`], run the library's run loop with half the batch each
//! and must take the steps one loop takes with the whole batch. (tests/suite/distributed.rs
//! checks the same through `mpirun` and the CLI.)

use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use burn::tensor::Device;
use retrato::train::checkpoint::{self, RunInfo};
use retrato::train::collective::{Collective, broadcast_trainer};
use retrato::train::params::{Values, read_values};
use retrato::train::run::{MemoryStore, Run, Silent};
use retrato::train::trainer::Networks;
use retrato::train::{TrainConfig, Trainer};

use crate::toy::toy_dataset;

/// What the ranks of one job share: a barrier and the buffers they exchange through.
struct Exchange {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f32>>>,
    bytes: Mutex<Vec<u8>>,
}

struct ThreadRank {
    rank: usize,
    size: usize,
    exchange: Arc<Exchange>,
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum(&self, values: &mut [f32]) {
        self.exchange.slots.lock().unwrap()[self.rank] = values.to_vec();
        self.exchange.barrier.wait();
        // Summed in rank order on every rank, as MPI's sum is the same on every rank.
        let slots = self.exchange.slots.lock().unwrap().clone();
        values.fill(0.0);
        for slot in &slots {
            values.iter_mut().zip(slot).for_each(|(v, s)| *v += s);
        }
        self.exchange.barrier.wait();
    }

    fn broadcast(&self, bytes: &mut Vec<u8>) {
        if self.rank == 0 {
            *self.exchange.bytes.lock().unwrap() = bytes.clone();
        }
        self.exchange.barrier.wait();
        if self.rank != 0 {
            *bytes = self.exchange.bytes.lock().unwrap().clone();
        }
        self.exchange.barrier.wait();
    }
}

/// A small MLP GAN (no batch norm, no dropout, no augmentation), batch 8, with LeCam (state
/// every rank keeps, averaged over the job).
fn config() -> TrainConfig {
    let model = serde_json::json!({
        "family": "mlp", "latent_dim": 8, "g_hidden": [32, 32], "d_hidden": [32],
        "image_size": 16, "g_dropout": 0.0, "d_dropout": 0.0,
    });
    let train = serde_json::json!({ "batch_size": 8, "augment": [], "ema_decay": 0.9, "lecam_weight": 0.5 });
    serde_json::from_value(serde_json::json!({ "model": model, "train": train })).unwrap()
}

/// The job's starting trainer as checkpoint bytes. burn initialises parameters on first use
/// from its one process-wide generator, which tests running in parallel reseed: writing the
/// start draws them all at once, and every loop below starts from these same bytes.
fn start() -> Vec<u8> {
    let trainer = Trainer::new(config(), &Device::flex().autodiff()).unwrap();
    checkpoint::encode(&trainer, &RunInfo::default()).unwrap()
}

/// `steps` steps of the run loop from `start` as rank `rank` of `ranks` (no ranks: a single
/// process); returns every weight of G, D and the moving average, and the loss rows it saw.
fn train(start: &[u8], ranks: Option<Rc<dyn Collective>>, steps: u64) -> (Vec<f32>, Vec<Vec<f32>>) {
    let device = Device::flex().autodiff();
    // As the CLI does: rank 0 reads the start and hands the trainer over.
    let (mut trainer, _) = match &ranks {
        None => checkpoint::decode(start, &device).unwrap(),
        Some(ranks) => {
            let local = (ranks.rank() == 0).then(|| checkpoint::decode(start, &device).unwrap());
            broadcast_trainer(ranks.as_ref(), local, &device).unwrap()
        }
    };
    trainer.ranks = ranks;
    let dataset = toy_dataset(32, 16);
    let store = MemoryStore::default();
    let mut run = Run::new(
        trainer,
        RunInfo::default(),
        dataset,
        None,
        store,
        Box::new(Instant::now()),
    );
    let advance = pollster::block_on(run.advance(steps, &mut Silent)).unwrap();
    assert_eq!(run.trainer.step, steps);
    let Networks::Gan {
        generator,
        discriminator,
        ..
    } = &run.trainer.networks
    else {
        panic!("a GAN")
    };
    let mut values = Values::default();
    generator.valid().inspect(&mut values);
    discriminator.valid().inspect(&mut values);
    run.trainer.ema.as_ref().unwrap().inspect(&mut values);
    (
        pollster::block_on(read_values(values)).unwrap().concat(),
        advance.rows,
    )
}

#[test]
fn two_ranks_with_half_batches_take_the_steps_of_one_loop() {
    let steps = 4;
    let start = Arc::new(start());
    let (single, single_rows) = train(&start, None, steps);
    let exchange = Arc::new(Exchange {
        barrier: Barrier::new(2),
        slots: Mutex::new(vec![Vec::new(); 2]),
        bytes: Mutex::new(Vec::new()),
    });
    let ranks: Vec<_> = (0..2)
        .map(|rank| {
            let (exchange, start) = (exchange.clone(), start.clone());
            std::thread::spawn(move || {
                let me = ThreadRank {
                    rank,
                    size: 2,
                    exchange,
                };
                train(&start, Some(Rc::new(me)), steps)
            })
        })
        .collect();
    let results: Vec<_> = ranks.into_iter().map(|r| r.join().unwrap()).collect();
    let start = {
        let (trainer, _) = checkpoint::decode(&start, &Device::flex().autodiff()).unwrap();
        let mut values = Values::default();
        trainer.generator().valid().inspect(&mut values);
        pollster::block_on(read_values(values)).unwrap().concat()
    };
    let moved = crate::max_abs_diff(&single[..start.len()], &start);
    assert!(moved > 1e-4, "training moved G by only {moved}");
    for (rank, (weights, rows)) in results.iter().enumerate() {
        let apart = crate::max_abs_diff(weights, &single);
        assert!(
            apart <= 1e-6,
            "rank {rank} differs from one loop by {apart}"
        );
        // The ranks see the job's losses: the mean of the two halves, near the whole's.
        assert_eq!(rows.len(), single_rows.len());
        for (a, b) in rows.iter().zip(&single_rows) {
            let apart = crate::max_abs_diff(a, b);
            assert!(apart <= 1e-5, "rank {rank}'s losses {a:?} vs {b:?}");
        }
    }
    assert_eq!(
        results[0], results[1],
        "both ranks hold the same weights and losses"
    );
}
