//! The native training loop around [`Trainer::train_step`]: batches, progress, metrics,
//! plots, sample grids, checkpoints, divergence rollback, time boxes and Ctrl-C.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use retrato::data::{Batches, Range};
use retrato::image_grid::{png_bytes, square_grid, to_rgb8};
use retrato::sample::{read, seeded_latents};
use retrato::train::checkpoint::{self, Moments, RunInfo};
use retrato::train::config::OnDivergence;
use retrato::train::objective::loss_names;
use retrato::train::{StepLosses, TrainConfig, Trainer, transfer};
use retrato::weights::{Evaluation, Header, Storage};

use super::fid::FidProbe;
use super::metrics::Metrics;
use super::{Args, Source, plot, resolve_config};
use crate::cli::data::read_training_set;
use crate::cli::files::write_atomic;

/// The reduced checkpoint every run ends with (f16 networks, moments optional).
const REDUCED_CHECKPOINT: &str = "resume.safetensors";
/// The checkpoint with the run's best FID.
const BEST_FID_CHECKPOINT: &str = "best-fid.safetensors";
/// Seed of the fixed latents behind every sample grid of a run.
const SAMPLE_SEED: u64 = 0x5EED;
/// Seconds kept for writing the last checkpoint, sample grid and model at the end.
const FINISH_SECONDS: f64 = 10.0;
/// Plain progress lines (when stdout is not a terminal) at most this often.
const LOG_EVERY_SECONDS: f64 = 15.0;

pub fn train(args: Args, config: Option<TrainConfig>, source: Option<Source>) -> Result<()> {
    // --max-minutes bounds the whole command: reading data and FID features, training, and
    // the final FID, checkpoint and model file.
    let command_start = Instant::now();
    let device = args.device.device()?.autodiff();
    let out = args.out.clone();
    let checkpoint_dir = out.join("checkpoints");
    let existing = checkpoints(&checkpoint_dir);
    let (mut trainer, mut info) = match config {
        None => {
            let latest = match (args.resume.clone().flatten(), existing.last()) {
                (Some(_), Some(_)) => bail!(
                    "{}: already holds a run; continue it with --resume (no file), or choose another --out",
                    out.display()
                ),
                (Some(file), None) => file,
                (None, Some(latest)) => latest.clone(),
                (None, None) => {
                    bail!("{}: no checkpoint to resume from", checkpoint_dir.display())
                }
            };
            let latest = &latest;
            let (mut trainer, info) = load_checkpoint(latest, &device)?;
            let config = resolve_config(&args, Some(&trainer.config), None)?;
            if config.model != trainer.config.model {
                bail!("the model cannot change when resuming; start a new run with --out");
            }
            trainer.config = config;
            println!(
                "resuming {} at step {} ({})",
                latest.display(),
                trainer.step,
                describe_checkpoint(latest)
            );
            (trainer, info)
        }
        Some(config) => {
            if !existing.is_empty() {
                bail!(
                    "{}: already holds a run; pass --resume to continue it, or choose another --out",
                    out.display()
                );
            }
            let mut info = RunInfo::default();
            let trainer = match (&source, &args.from) {
                (Some(source), Some(path)) => {
                    let d_file = source.discriminator.as_ref();
                    let transfer = transfer::from_generator(config, &source.model, d_file, &device)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    let name = path.file_name().unwrap_or(path.as_os_str());
                    info.started_from = Some(name.to_string_lossy().into_owned());
                    println!(
                        "starting from {} ({} discriminator)",
                        path.display(),
                        match transfer.pretrained_discriminator {
                            true => "with its trained",
                            false => "no discriminator in the file: a fresh",
                        }
                    );
                    transfer.trainer
                }
                _ => Trainer::new(config, &device).map_err(anyhow::Error::msg)?,
            };
            (trainer, info)
        }
    };

    let size = trainer.config.model.image_size();
    let dataset = read_training_set(&args.data, size, args.fit.into(), args.no_cache)?;
    if trainer.step == 0 {
        let name = args.data.file_name().unwrap_or(args.data.as_os_str());
        info.dataset = format!("{} ({} images)", name.to_string_lossy(), dataset.count);
    }
    let t = trainer.config.train.clone();
    if dataset.count < t.batch_size {
        println!(
            "note: {} images are fewer than batch_size {}: batches hold all {} images",
            dataset.count, t.batch_size, dataset.count
        );
    }
    let batches = Batches {
        count: dataset.count,
        batch_size: t.batch_size.min(dataset.count),
        seed: t.seed,
        flip: t.flip,
    };
    let range = match trainer.config.unit_range() {
        true => Range::ZeroToOne,
        false => Range::MinusOneToOne,
    };
    let total_steps = t.epochs as u64 * batches.steps_per_epoch();
    let probe = FidProbe::open(&trainer.config.run, &dataset, &args.data, &trainer)?;
    // Every metrics.csv column between epoch and images/s: the loss terms, then FID.
    let mut names: Vec<String> = loss_names(&t).iter().map(|s| s.to_string()).collect();
    let fid_column = probe.as_ref().map(|_| {
        names.push("fid".to_string());
        names.len() - 1
    });
    let mut last_evaluation = None;

    std::fs::create_dir_all(out.join("samples"))
        .with_context(|| format!("{}: cannot create it", out.display()))?;
    let resolved = toml::to_string_pretty(&trainer.config)?;
    write_atomic(&out.join("config.toml"), resolved.as_bytes())?;
    let mut metrics = Metrics::open(&out.join("metrics.csv"), &names, Some(trainer.step))?;
    let mut saver = Saver {
        dir: checkpoint_dir,
        keep: trainer.config.run.keep_checkpoints,
        last_saved: Instant::now(),
    };
    // A new run, or one continued from a checkpoint file in a new folder: the folder holds a
    // checkpoint from the start, so `--resume` (no file) always finds one.
    if trainer.step == 0 || args.resume.as_ref().is_some_and(Option::is_some) {
        saver.save(&trainer, &info)?;
    }
    println!(
        "training {} ({}) on {}: G {} parameters, {} steps of {} images ({} epochs), out {}",
        trainer.config.model.family(),
        serde_json::to_value(t.objective)?.as_str().unwrap_or("?"),
        if device.clone().inner() == Device::flex() {
            "cpu"
        } else {
            "wgpu"
        },
        trainer.generator().parameter_count(),
        total_steps,
        batches.batch_size,
        t.epochs,
        out.display()
    );

    // Time kept back from training for the end of the run: the final FID when the run
    // measures one, and writing the last checkpoint, samples and model.
    let finish_reserve = probe.as_ref().map_or(0.0, |p| p.estimated_seconds) + FINISH_SECONDS;
    let mut final_fid = probe.is_some();
    if let Some(max) = args.max_minutes {
        let left = max * 60.0 - command_start.elapsed().as_secs_f64();
        if probe.is_some() && finish_reserve > left {
            final_fid = false;
            println!(
                "note: --max-minutes {max} leaves no time for the final FID (~{}): it is skipped; measure later with `retrato eval fid`",
                format_seconds(finish_reserve - FINISH_SECONDS)
            );
        } else if probe.is_some() {
            println!(
                "time box: training stops {} before --max-minutes {max} to leave time for the final FID",
                format_seconds(finish_reserve)
            );
        }
    }
    let training_seconds = args.max_minutes.map(|max| match final_fid {
        true => max * 60.0 - finish_reserve,
        false => max * 60.0 - FINISH_SECONDS,
    });

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // The first Ctrl-C asks for a checkpoint and a clean stop; a second one quits now.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }

    let terminal = std::io::stdout().is_terminal();
    let bar = match terminal {
        true => {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_position(trainer.step);
            bar
        }
        false => ProgressBar::hidden(),
    };

    let session_start = Instant::now();
    let session_first_step = trainer.step;
    let elapsed_before = info.elapsed_seconds;
    let mut last_log = Instant::now();
    let mut latest = vec![f64::NAN; names.len()];
    let stop_reason;
    loop {
        if trainer.step >= total_steps {
            stop_reason = "finished";
            break;
        }
        if args.max_steps.is_some_and(|max| trainer.step >= max) {
            stop_reason = "reached --max-steps";
            break;
        }
        let elapsed = command_start.elapsed().as_secs_f64();
        if training_seconds.is_some_and(|limit| elapsed >= limit) {
            stop_reason = "reached --max-minutes";
            break;
        }
        if interrupted.load(Ordering::SeqCst) {
            stop_reason = "interrupted";
            break;
        }

        let step_start = Instant::now();
        let (indices, flips) = batches.at(trainer.step);
        let real = dataset.batch(&indices, &flips, range, trainer.device());
        let losses = read_losses(trainer.train_step(real));
        for (name, value) in &losses {
            if let Some(i) = names.iter().position(|n| n == name) {
                latest[i] = *value;
            }
        }
        let threshold = trainer.config.run.divergence_threshold;
        if let Some((name, value)) = losses
            .iter()
            .find(|(_, v)| !v.is_finite() || v.abs() > threshold)
        {
            let problem = format!("step {}: {name} = {value}", trainer.step);
            (trainer, info) = bar.suspend(|| recover(&problem, &saver, &device, info))?;
            metrics = Metrics::open(&out.join("metrics.csv"), &names, Some(trainer.step))?;
            latest.fill(f64::NAN);
            bar.set_position(trainer.step);
            continue;
        }

        let step_seconds = step_start.elapsed().as_secs_f64();
        let wall = elapsed_before + session_start.elapsed().as_secs_f64();
        let epoch = batches.epoch_of(trainer.step - 1) + 1;
        let end_of_epoch = trainer.step.is_multiple_of(batches.steps_per_epoch());
        let fid_fits = |p: &FidProbe| {
            let done_by = command_start.elapsed().as_secs_f64() + p.estimated_seconds;
            training_seconds.is_none_or(|limit| done_by < limit)
        };
        if let (Some(probe), Some(column), true) = (&probe, fid_column, end_of_epoch)
            && epoch.is_multiple_of(trainer.config.run.fid_epochs as u64)
            && fid_fits(probe)
        {
            info.elapsed_seconds = wall;
            let evaluation = bar.suspend(|| measure_fid(probe, &trainer, &mut info, &saver.dir))?;
            latest[column] = evaluation.scores.fid;
            last_evaluation = Some((trainer.step, evaluation));
        }
        metrics.append(
            trainer.step,
            epoch,
            &latest,
            batches.batch_size as f64 / step_seconds,
            wall,
        )?;
        if let Some(column) = fid_column {
            latest[column] = f64::NAN;
        }
        let session_steps = trainer.step - session_first_step;
        let rate = session_steps as f64 * batches.batch_size as f64
            / session_start.elapsed().as_secs_f64();
        let summary = loss_summary(&names, &latest);
        bar.set_prefix(format!("epoch {epoch}/{}", t.epochs));
        bar.set_message(format!("{rate:.1} img/s {summary}"));
        bar.set_position(trainer.step);
        if !terminal && last_log.elapsed().as_secs_f64() >= LOG_EVERY_SECONDS {
            let eta = (total_steps - trainer.step) as f64 * batches.batch_size as f64 / rate;
            println!(
                "epoch {epoch}/{} step {}/{total_steps} {rate:.1} img/s ETA {} {summary}",
                t.epochs,
                trainer.step,
                format_seconds(eta)
            );
            last_log = Instant::now();
        }

        info.elapsed_seconds = wall;
        if end_of_epoch {
            let run = &trainer.config.run;
            if epoch.is_multiple_of(run.sample_epochs as u64) {
                write_samples(&trainer, &out.join(format!("samples/epoch_{epoch:04}.png")))?;
            }
            plot::draw(&out.join("loss.png"), &names, &metrics.rows()?)?;
            if epoch.is_multiple_of(run.checkpoint_epochs as u64) {
                saver.save(&trainer, &info)?;
            }
            if !terminal {
                println!("epoch {epoch} done at step {} ({summary})", trainer.step);
            }
        } else if saver.last_saved.elapsed().as_secs_f64() / 60.0
            >= trainer.config.run.checkpoint_minutes
        {
            saver.save(&trainer, &info)?;
        }
    }
    bar.finish_and_clear();

    if let Some(probe) = &probe
        && stop_reason != "interrupted"
        && final_fid
        && last_evaluation
            .as_ref()
            .is_none_or(|(step, _)| *step != trainer.step)
    {
        let evaluation = measure_fid(probe, &trainer, &mut info, &saver.dir)?;
        last_evaluation = Some((trainer.step, evaluation));
    }
    info.elapsed_seconds = elapsed_before + session_start.elapsed().as_secs_f64();
    metrics.flush()?;
    plot::draw(&out.join("loss.png"), &names, &metrics.rows()?)?;
    let saved = saver.save(&trainer, &info)?;
    let final_epoch = batches.epoch_of(trainer.step.saturating_sub(1)) + 1;
    write_samples(
        &trainer,
        &out.join(format!("samples/epoch_{final_epoch:04}.png")),
    )?;
    let evaluation = last_evaluation
        .filter(|(step, _)| *step == trainer.step)
        .map(|(_, e)| e);
    let model_path = out.join("model.safetensors");
    write_model(&trainer, &info, evaluation, &model_path)?;
    let reduced_path = out.join(REDUCED_CHECKPOINT);
    let moments = match args.keep_moments {
        true => Moments::Bf16,
        false => Moments::Drop,
    };
    let reduced = checkpoint::encode_reduced(&trainer, &info, moments)
        .context("cannot write the reduced checkpoint")?;
    write_atomic(&reduced_path, &reduced)?;
    println!(
        "{stop_reason} at step {} of {total_steps} ({} in this session, {} in all)",
        trainer.step,
        format_seconds(session_start.elapsed().as_secs_f64()),
        format_seconds(info.elapsed_seconds)
    );
    println!("checkpoint {}", saved.display());
    println!("model {}", model_path.display());
    println!(
        "reduced checkpoint {} ({:.1} MB; another machine continues with --resume FILE)",
        reduced_path.display(),
        reduced.len() as f64 / 1e6
    );
    if trainer.step < total_steps {
        println!(
            "continue with: retrato train --resume --data {} --out {}",
            args.data.display(),
            out.display()
        );
    }
    Ok(())
}

/// One synchronous read of every loss term of a step.
fn read_losses(losses: StepLosses) -> Vec<(&'static str, f64)> {
    let (names, tensors): (Vec<_>, Vec<_>) = losses.0.into_iter().unzip();
    if tensors.is_empty() {
        return Vec::new();
    }
    let values = Tensor::cat(tensors, 0)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 after convert");
    names
        .into_iter()
        .zip(values.into_iter().map(f64::from))
        .collect()
}

fn loss_summary(names: &[String], values: &[f64]) -> String {
    names
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_finite())
        .map(|(n, v)| format!("{n}={v:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// Rolls back to the newest checkpoint with lower learning rates, or stops, as configured.
fn recover(
    problem: &str,
    saver: &Saver,
    device: &Device,
    info: RunInfo,
) -> Result<(Trainer, RunInfo)> {
    let Some(latest) = checkpoints(&saver.dir).pop() else {
        bail!("{problem}: training diverged and there is no checkpoint to roll back to");
    };
    let (mut trainer, saved_info) = load_checkpoint(&latest, device)?;
    let run = trainer.config.run.clone();
    if run.on_divergence == OnDivergence::Stop {
        bail!(
            "{problem}: training diverged; stopped (on_divergence = \"stop\"). The last good checkpoint is {}",
            latest.display()
        );
    }
    let rollbacks = info.rollbacks.max(saved_info.rollbacks) + 1;
    if rollbacks > run.max_rollbacks {
        bail!(
            "{problem}: training diverged again after {} rollbacks; stopping. The last good checkpoint is {}",
            run.max_rollbacks,
            latest.display()
        );
    }
    trainer.lr_scale *= run.lr_backoff;
    println!(
        "{problem}: diverged; rolled back to step {} ({}), learning rates now x{}",
        trainer.step,
        latest.display(),
        trainer.lr_scale
    );
    Ok((
        trainer,
        RunInfo {
            rollbacks,
            ..saved_info
        },
    ))
}

fn load_checkpoint(path: &Path, device: &Device) -> Result<(Trainer, RunInfo)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read it", path.display()))?;
    checkpoint::decode(&bytes, device).with_context(|| path.display().to_string())
}

/// What a checkpoint file keeps (full, or reduced and how), for the resume line.
fn describe_checkpoint(path: &Path) -> String {
    match retrato::weights::ModelFile::from_path(path) {
        Ok(file) => checkpoint::describe(&file),
        Err(e) => e.to_string(),
    }
}

/// The run's checkpoints, oldest first (names sort by step).
fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
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

struct Saver {
    dir: PathBuf,
    keep: usize,
    last_saved: Instant,
}

impl Saver {
    /// Writes a checkpoint atomically, then deletes all but the newest `keep`.
    fn save(&mut self, trainer: &Trainer, info: &RunInfo) -> Result<PathBuf> {
        let bytes = checkpoint::encode(trainer, info).context("cannot write a checkpoint")?;
        let path = self
            .dir
            .join(format!("step-{:09}.safetensors", trainer.step));
        write_atomic(&path, &bytes)?;
        let all = checkpoints(&self.dir);
        for old in &all[..all.len().saturating_sub(self.keep)] {
            let _ = std::fs::remove_file(old);
        }
        self.last_saved = Instant::now();
        Ok(path)
    }
}

/// One FID measurement: printed, and when it is the run's best, its checkpoint kept as
/// best-fid.safetensors (outside the rotation of step-* checkpoints).
fn measure_fid(
    probe: &FidProbe,
    trainer: &Trainer,
    info: &mut RunInfo,
    checkpoint_dir: &Path,
) -> Result<Evaluation> {
    let start = Instant::now();
    let evaluation = probe.measure(trainer)?;
    let fid = evaluation.scores.fid;
    let best = info.best_fid.is_none_or(|(best, _)| fid < best);
    if best {
        info.best_fid = Some((fid, trainer.step));
        let bytes = checkpoint::encode(trainer, info).context("cannot write a checkpoint")?;
        write_atomic(&checkpoint_dir.join(BEST_FID_CHECKPOINT), &bytes)?;
    }
    let (best_fid, best_step) = info.best_fid.expect("set above");
    println!(
        "step {}: FID {fid:.2} on {} portraits (floor {:.2}; best {best_fid:.2} at step {best_step}{}) in {}",
        trainer.step,
        evaluation.n,
        evaluation.floor.unwrap_or(f64::NAN),
        if best { ", saved" } else { "" },
        format_seconds(start.elapsed().as_secs_f64())
    );
    Ok(evaluation)
}

/// The fixed-latent sample grid: the same portraits' evolution across epochs.
fn write_samples(trainer: &Trainer, path: &Path) -> Result<()> {
    let generator = trainer.sampling_generator();
    let device = generator.device();
    let count = trainer.config.run.sample_count;
    let z = seeded_latents(&generator, SAMPLE_SEED, 0, count, &device);
    let (values, dims) = read(generator.generate(z));
    write_atomic(path, &png_bytes(&square_grid(&to_rgb8(&values, dims))))
}

/// The page-ready model file: f16, from the moving average when there is one.
fn write_model(
    trainer: &Trainer,
    info: &RunInfo,
    evaluation: Option<Evaluation>,
    path: &Path,
) -> Result<()> {
    let config = &trainer.config;
    let mut header = Header::new(config.model.clone());
    if let Some(evaluation) = evaluation {
        header.metrics = evaluation.metrics();
        header.evaluation = Some(evaluation);
    }
    header.dataset = info.dataset.clone();
    header.steps = trainer.step;
    header.created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    header.notes = format!(
        "{} with `retrato train`: objective {}, {} steps of batch {}, {}{}.",
        match &info.started_from {
            Some(from) => format!("Fine-tuned from {from}"),
            None => "Trained".to_string(),
        },
        serde_json::to_value(config.train.objective)?
            .as_str()
            .unwrap_or("?"),
        trainer.step,
        config.train.batch_size,
        format_seconds(info.elapsed_seconds),
        match trainer.ema {
            Some(_) => format!(", generator EMA {}", config.train.ema_decay),
            None => String::new(),
        }
    );
    let (bytes, storage) = checkpoint::model_file(trainer, header)?;
    if storage == Storage::F32 {
        println!("note: weights exceed f16's range; the model file is stored as f32");
    }
    write_atomic(path, &bytes)
}
