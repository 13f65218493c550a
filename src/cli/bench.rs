//! `retrato bench train` / `bench finetune` / `bench sample`: the training step's and
//! generation's speed, measured in-process after a warm-up, on synthetic images (decoding and
//! PNG encoding are not what is measured). `bench/train.sh` and `bench/sample.sh` run them
//! beside `bench/pytorch_dcgan.py`, the same networks, batches and optimizer in PyTorch.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, anyhow, ensure};
use burn::tensor::{Distribution, Tensor};
use retrato::model::ModelConfig;
use retrato::sample::{BATCH, read, seeded_latents};
use retrato::train::{Objective, TrainConfig, Trainer, finetune_config, transfer};

use super::device::DeviceChoice;
use super::files::load_model;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Images per second of full training steps (D on real and fake, then G).
    Train(TrainArgs),
    /// Steps per second of fine-tuning a model file with the page's recipe and batch.
    Finetune(FinetuneArgs),
    /// Images per second of generation as `retrato sample` does it (batches of 64, read back).
    Sample(SampleArgs),
}

#[derive(clap::Args)]
pub struct SampleArgs {
    #[arg(long, default_value = "dcgan")]
    family: String,
    /// Images per timed run.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Timed runs (after the warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// The model to adapt (e.g. www/models/celeba-64.safetensors).
    #[arg(long, value_name = "MODEL")]
    from: PathBuf,
    /// Its discriminator, when kept in a separate file (as the page ships it).
    #[arg(long)]
    discriminator: Option<PathBuf>,
    /// Number of pictures (the batch is the recipe's, at most this many).
    #[arg(long, default_value_t = 20)]
    images: usize,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(long, default_value = "dcgan")]
    family: String,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed steps (after the warm-up).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// bce, wgan-clip, wgan-gp or vae (vae needs --family vae).
    #[arg(long, default_value = "bce")]
    objective: String,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    /// Print one JSON line (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => train(args),
        Command::Finetune(args) => finetune(args),
        Command::Sample(args) => sample(args),
    }
}

/// Generation as `retrato sample` runs it, without the PNG: seeded latents, the generator in
/// inference mode over batches of [`BATCH`], images in [0, 1] read back to the host.
fn sample(args: SampleArgs) -> Result<()> {
    ensure!(
        args.n > 0 && args.runs > 0,
        "--n and --runs must be at least 1"
    );
    let model = ModelConfig::default_for(&args.family)
        .ok_or_else(|| anyhow!("unknown family {:?}", args.family))?;
    let device = args.device.device()?;
    let generator = model.init_generator(&device);
    let mut times = Vec::new();
    for run in 0..args.warmup + args.runs {
        let start = Instant::now();
        for first in (0..args.n).step_by(BATCH) {
            let count = BATCH.min(args.n - first);
            let z = seeded_latents(&generator, run as u64, first as u64, count, &device);
            let (values, _) = read(generator.generate(z));
            std::hint::black_box(values);
        }
        if run >= args.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let images_per_s = args.n as f64 / median;
    let threads = rayon::current_num_threads();
    let peak_mib = peak_memory_mib();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "tool": "retrato", "bench": "sample", "family": args.family, "n": args.n,
                "runs": args.runs, "median_s": median, "min_s": times[0],
                "max_s": times[times.len() - 1], "images_per_s": images_per_s,
                "peak_rss_mib": peak_mib, "threads": threads,
            })
        );
    } else {
        println!(
            "retrato sample {} {}x{}: {} images in {median:.3} s median (min {:.3}, max {:.3}) over {} runs, {images_per_s:.1} images/s, peak memory {} MiB, {threads} threads",
            args.family,
            model.image_size(),
            model.image_size(),
            args.n,
            times[0],
            times[times.len() - 1],
            args.runs,
            peak_mib.map_or("?".into(), |m| format!("{m:.0}")),
        );
    }
    Ok(())
}

/// Seconds of `steps` timed steps after `warmup`, each read back (so really done), sorted.
fn time_steps(trainer: &mut Trainer, real: &Tensor<4>, warmup: usize, steps: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        if i == warmup
            && let Some(ranks) = &trainer.ranks
        {
            // Every rank starts the timed steps together.
            ranks.broadcast(&mut vec![0]);
        }
        let start = Instant::now();
        let losses = trainer.train_step(real.clone());
        // Reading the losses waits for the device: the step is really done.
        for (_, loss) in losses.0 {
            let _ = loss.into_data();
        }
        if i >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

fn finetune(args: FinetuneArgs) -> Result<()> {
    let source = load_model(&args.from)?;
    let d_file = args.discriminator.as_deref().map(load_model).transpose()?;
    let mut config = finetune_config(&source.header.model).map_err(anyhow::Error::msg)?;
    config.train.batch_size = config.train.batch_size.min(args.images);
    let device = args.device.device()?.autodiff();
    let mut trainer = transfer::from_model(config, &source, d_file.as_ref(), &device)
        .map_err(anyhow::Error::msg)?
        .trainer;
    let (batch, size) = (
        trainer.config.train.batch_size,
        source.header.model.image_size(),
    );
    let real = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let times = time_steps(&mut trainer, &real, args.warmup, args.steps);
    let median = times[times.len() / 2];
    let threads = rayon::current_num_threads();
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "tool": "retrato", "bench": "finetune", "batch": batch,
                "median_step_s": median, "steps_per_s": 1.0 / median, "threads": threads })
        );
    } else {
        println!(
            "retrato fine-tune {}, batch {batch}: median step {median:.3} s (min {:.3}, max {:.3}) over {} steps, {:.2} steps/s, {threads} threads",
            args.from.display(),
            times[0],
            times[times.len() - 1],
            args.steps,
            1.0 / median,
        );
    }
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    let model = ModelConfig::default_for(&args.family)
        .ok_or_else(|| anyhow!("unknown family {:?}", args.family))?;
    let objective: Objective = serde_json::from_value(serde_json::json!(args.objective))
        .map_err(|_| anyhow!("unknown objective {:?}", args.objective))?;
    let mut value = serde_json::json!({ "model": model });
    value["train"] = serde_json::json!({ "objective": objective, "batch_size": args.batch });
    if objective == Objective::WganGp {
        value["model"]["d_batch_norm"] = false.into();
        value["model"]["d_dropout"] = 0.0.into();
    }
    let config: TrainConfig = serde_json::from_value(value)?;
    let device = args.device.device()?.autodiff();
    let mut trainer = Trainer::new(config, &device).map_err(anyhow::Error::msg)?;
    // Under mpirun (feature `distributed`): the batch split over the ranks, gradients averaged.
    let ranks = super::ranks::join()?;
    let (rank_count, shard) = match &ranks {
        Some(ranks) => {
            super::ranks::check_batch(ranks.size(), args.batch)?;
            (ranks.size(), args.batch / ranks.size())
        }
        None => (1, args.batch),
    };
    trainer.ranks = ranks.clone();
    let size = trainer.config.model.image_size();
    let real = Tensor::<4>::random(
        [shard, 3, size, size],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let communicated_before = ranks.as_ref().map_or(0.0, |r| r.communication_seconds());
    let started = Instant::now();
    let times = time_steps(&mut trainer, &real, args.warmup, args.steps);
    // The share of the steps (warm-up included) spent in the all-reduce, waiting included.
    let communication_share = ranks.as_ref().map(|r| {
        (r.communication_seconds() - communicated_before) / started.elapsed().as_secs_f64()
    });
    let median = times[times.len() / 2];
    let images_per_s = args.batch as f64 / median;
    let peak_mib = peak_memory_mib();
    // burn's CPU backend runs on rayon's pool (RAYON_NUM_THREADS sets its size).
    let threads = rayon::current_num_threads();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "tool": "retrato", "device": args.device.burn_name(), "family": args.family, "objective": args.objective,
                "batch": args.batch, "steps": args.steps, "median_step_s": median,
                "min_step_s": times[0], "max_step_s": times[times.len() - 1],
                "images_per_s": images_per_s, "peak_rss_mib": peak_mib, "threads": threads,
                "ranks": rank_count, "communication_share": communication_share,
            })
        );
    } else {
        println!(
            "retrato {} {} {size}x{size} on {}, batch {}: median step {median:.3} s (min {:.3}, max {:.3}) over {} steps, {images_per_s:.1} images/s, peak memory {} MiB, {threads} threads",
            args.family,
            args.objective,
            args.device.burn_name(),
            args.batch,
            times[0],
            times[times.len() - 1],
            args.steps,
            peak_mib.map_or("?".into(), |m| format!("{m:.0}")),
        );
        if let Some(share) = communication_share {
            println!(
                "{rank_count} ranks of {shard} images: {:.1}% of the time in the gradient all-reduce (waiting for the other ranks included)",
                share * 100.0
            );
        }
    }
    Ok(())
}

/// The process's peak resident memory (VmHWM), where the system reports it.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
