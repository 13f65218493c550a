//! `retrato train`'s door onto the library's run loop ([`retrato::train::run::Run`]): picks
//! where the run starts (a new trainer, a transfer, a checkpoint), opens the run folder,
//! and shows the loop's events (progress bar or plain lines, Ctrl-C).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use retrato::train::card::format_seconds;
use retrato::train::checkpoint::{self, Moments, RunInfo};
use retrato::train::collective::broadcast_trainer;
use retrato::train::run::folder::{MODEL_FILE, REDUCED_CHECKPOINT, RunFolder, read_checkpoint};
use retrato::train::run::{Event, MemoryStore, Observer, Ranked, Run, Stop, TimeBox, columns};
use retrato::train::{TrainConfig, Trainer, transfer};
use retrato::weights::Storage;

use super::{Args, Source, resolve_config};
use crate::cli::data::read_training_set;
use retrato::eval::probe::FidProbe;

/// Plain progress lines (when stdout is not a terminal) at most this often.
const LOG_EVERY_SECONDS: f64 = 15.0;

pub fn train(args: Args, config: Option<TrainConfig>, source: Option<Source>) -> Result<()> {
    // --max-minutes bounds the whole command: reading data and FID features, training, and
    // the final FID, checkpoint and model file.
    let clock = Instant::now();
    if let (Some(decay), Some(max)) = (args.decay_minutes, args.max_minutes)
        && !(decay > 0.0 && decay < max)
    {
        bail!("--decay-minutes {decay} must be above 0 and below --max-minutes {max}");
    }
    let device = args.device.device()?.autodiff();
    let out = args.out.clone();
    let resumed_from_file = args.resume.as_ref().is_some_and(Option::is_some);
    let ranks = crate::cli::ranks::join()?;
    let rank = ranks.as_ref().map_or(0, |r| r.rank());
    let (mut trainer, mut info) = match &ranks {
        None => starting_point(&args, config, source.as_ref(), &device)?,
        Some(ranks) => {
            // Rank 0 decides where the run starts and hands it to the others.
            let local = match rank {
                0 => Some(starting_point(&args, config, source.as_ref(), &device)?),
                _ => None,
            };
            broadcast_trainer(ranks.as_ref(), local, &device).map_err(|e| anyhow!(e))?
        }
    };
    trainer.ranks = ranks.clone();

    let dataset = read_training_set(
        &args.data,
        trainer.config.model.image_size(),
        args.fit.into(),
        args.no_cache,
    )?;
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
    if let Some(ranks) = &ranks {
        crate::cli::ranks::check_batch(ranks.size(), t.batch_size.min(dataset.count))?;
    }
    let probe = match rank {
        0 => FidProbe::open(
            &trainer.config.run,
            &dataset,
            &args.data,
            &trainer,
            &mut |line| println!("{line}"),
        )?,
        _ => None,
    };
    if rank == 0 {
        let resolved = toml::to_string_pretty(&trainer.config)?;
        retrato::atomic::write_atomic(&out.join("config.toml"), resolved.as_bytes())
            .map_err(|e| anyhow!(e))?;
    }

    let step = trainer.step;
    let columns = columns(&t, probe.is_some());
    let keep = trainer.config.run.keep_checkpoints;
    let store = match rank {
        0 => {
            let mut folder = RunFolder::open(&out, &columns, step, keep).map_err(|e| anyhow!(e))?;
            if args.keep_moments {
                folder.moments = Moments::Bf16;
            }
            Ranked::Writer(folder)
        }
        _ => Ranked::Follower(MemoryStore::default()),
    };
    let mut run = Run::new(trainer, info, dataset, None, store, Box::new(clock));
    if let Some(probe) = probe {
        run = run.with_evaluator(Box::new(probe));
    }
    run.limits.max_steps = args.max_steps;
    // A new run, or one continued from a checkpoint file in a new folder: the folder holds a
    // checkpoint from the start, so `--resume` (no file) always finds one.
    if step == 0 || resumed_from_file {
        run.checkpoint().map_err(|e| anyhow!(e))?;
    }
    if let Some(ranks) = &ranks {
        println!(
            "data-parallel over {} ranks: {} images of each batch per rank, gradients averaged every step",
            ranks.size(),
            run.batches.batch_size / ranks.size()
        );
    }
    println!(
        "training {} ({}) on {}: G {} parameters, {} steps of {} images ({} epochs), out {}",
        run.trainer.config.model.family(),
        serde_json::to_value(t.objective)?.as_str().unwrap_or("?"),
        match device.clone().inner() == Device::flex() {
            true => "cpu",
            false => "wgpu",
        },
        run.trainer.generator().parameter_count(),
        run.total_steps,
        run.batches.batch_size,
        t.epochs,
        out.display()
    );
    match args
        .max_minutes
        .and_then(|max| Some((max, run.time_box(max * 60.0)?)))
    {
        Some((max, TimeBox::NoFinalFid { estimate })) => println!(
            "note: --max-minutes {max} leaves no time for the final FID (~{}): it is skipped; measure later with `retrato eval fid`",
            format_seconds(estimate)
        ),
        Some((max, TimeBox::FinalFidKept { reserve })) => println!(
            "time box: training stops {} before --max-minutes {max} to leave time for the final FID",
            format_seconds(reserve)
        ),
        None => {}
    }
    run.limits.decay_seconds = args.decay_minutes.map(|minutes| minutes * 60.0);

    let mut screen = Screen::new(
        run.total_steps,
        run.trainer.step,
        t.epochs,
        run.batches.batch_size,
    );
    let advance = pollster::block_on(run.advance(u64::MAX, &mut screen));
    screen.bar.finish_and_clear();
    let stop = advance
        .map_err(|e| anyhow!(e))?
        .stop
        .expect("runs to a stop");
    run.finish(stop, &mut screen).map_err(|e| anyhow!(e))?;

    let stop_reason = match stop {
        Stop::Finished => "finished",
        Stop::MaxSteps => "reached --max-steps",
        Stop::Deadline => "reached --max-minutes",
        Stop::Interrupted => "interrupted",
    };
    let Some(folder) = run.store.writer() else {
        return Ok(());
    };
    if folder.model_storage == Some(Storage::F32) {
        println!("note: weights exceed f16's range; the model file is stored as f32");
    }
    println!(
        "{stop_reason} at step {} of {} ({} in this session, {} in all)",
        run.trainer.step,
        run.total_steps,
        format_seconds(run.session_seconds()),
        format_seconds(run.info.elapsed_seconds)
    );
    if let Some(ranks) = &ranks {
        println!(
            "{} ranks: {:.1}% of this session in the gradient all-reduce and broadcasts (waiting for the slowest rank included)",
            ranks.size(),
            100.0 * ranks.communication_seconds() / run.session_seconds()
        );
    }
    if let Some(saved) = &folder.last_checkpoint {
        println!("checkpoint {}", saved.display());
    }
    println!("model {}", out.join(MODEL_FILE).display());
    println!(
        "reduced checkpoint {} ({:.1} MB; another machine continues with --resume FILE)",
        out.join(REDUCED_CHECKPOINT).display(),
        folder.reduced_bytes as f64 / 1e6
    );
    if run.trainer.step < run.total_steps {
        println!(
            "continue with: retrato train --resume --data {} --out {}",
            args.data.display(),
            out.display()
        );
    }
    Ok(())
}

/// The trainer the run starts from: a checkpoint (`--resume`), a transfer (`--from`), or new.
fn starting_point(
    args: &Args,
    config: Option<TrainConfig>,
    source: Option<&Source>,
    device: &Device,
) -> Result<(Trainer, RunInfo)> {
    let out = &args.out;
    let Some(config) = config else {
        let latest =
            RunFolder::resume_point(out, args.resume.clone().flatten()).map_err(|e| anyhow!(e))?;
        let (mut trainer, info) = read_checkpoint(&latest, device).map_err(|e| anyhow!(e))?;
        let config = resolve_config(args, Some(&trainer.config), None)?;
        if config.model != trainer.config.model {
            bail!("the model cannot change when resuming; start a new run with --out");
        }
        trainer.config = config;
        println!(
            "resuming {} at step {} ({})",
            latest.display(),
            trainer.step,
            describe_checkpoint(&latest)
        );
        return Ok((trainer, info));
    };
    RunFolder::check_empty(out).map_err(|e| anyhow!(e))?;
    let mut info = RunInfo::default();
    let trainer = match (source, &args.from) {
        (Some(source), Some(path)) => {
            let d_file = source.discriminator.as_ref();
            let transfer = transfer::from_generator(config, &source.model, d_file, device)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
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
        _ => Trainer::new(config, device).map_err(anyhow::Error::msg)?,
    };
    Ok((trainer, info))
}

/// What a checkpoint file keeps (full, or reduced and how), for the resume line.
fn describe_checkpoint(path: &Path) -> String {
    match retrato::weights::ModelFile::from_path(path) {
        Ok(file) => checkpoint::describe(&file),
        Err(e) => e.to_string(),
    }
}

/// The terminal side of a run: a progress bar on a terminal, plain lines in a log, and
/// Ctrl-C (the first asks for a checkpoint and a clean stop, a second quits now).
struct Screen {
    bar: ProgressBar,
    terminal: bool,
    interrupted: Arc<AtomicBool>,
    last_log: Instant,
    total_steps: u64,
    epochs: usize,
    batch_size: usize,
}

impl Screen {
    fn new(total_steps: u64, step: u64, epochs: usize, batch_size: usize) -> Self {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        let terminal = std::io::stdout().is_terminal();
        let bar = match terminal {
            true => {
                let bar = ProgressBar::new(total_steps);
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_position(step);
                bar
            }
            false => ProgressBar::hidden(),
        };
        Self {
            bar,
            terminal,
            interrupted,
            last_log: Instant::now(),
            total_steps,
            epochs,
            batch_size,
        }
    }
}

impl Observer for Screen {
    fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Progress {
                epoch,
                step,
                rate,
                summary,
            } => {
                self.bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
                self.bar.set_message(format!("{rate:.1} img/s {summary}"));
                self.bar.set_position(step);
                if !self.terminal && self.last_log.elapsed().as_secs_f64() >= LOG_EVERY_SECONDS {
                    let eta = (self.total_steps - step) as f64 * self.batch_size as f64 / rate;
                    println!(
                        "epoch {epoch}/{} step {step}/{} {rate:.1} img/s ETA {} {summary}",
                        self.epochs,
                        self.total_steps,
                        format_seconds(eta)
                    );
                    self.last_log = Instant::now();
                }
            }
            Event::EpochDone {
                epoch,
                step,
                summary,
            } => {
                if !self.terminal {
                    println!("epoch {epoch} done at step {step} ({summary})");
                }
            }
            Event::RolledBack {
                problem,
                step,
                checkpoint,
                lr_scale,
            } => {
                self.bar.suspend(|| {
                    println!(
                        "{problem}: diverged; rolled back to step {step} ({checkpoint}), learning rates now x{lr_scale}"
                    )
                });
                self.bar.set_position(step);
            }
            Event::DecayPlaced { start, end, kept } => {
                self.bar.suspend(|| match kept {
                    true => println!(
                        "--decay-minutes: already inside the run's decay (steps {start}-{end}), kept"
                    ),
                    false => println!(
                        "--decay-minutes: learning rates decay linearly over steps {start}-{end} (by the recent speed), stopping there"
                    ),
                });
                if !kept {
                    // The session now ends at the decay's end: the bar and the ETA count to it.
                    self.total_steps = end;
                    self.bar.set_length(end);
                }
            }
            Event::Fid {
                step,
                evaluation,
                best: (best_fid, best_step),
                saved,
                seconds,
            } => self.bar.suspend(|| {
                println!(
                    "step {step}: FID {:.2} on {} portraits (floor {:.2}; best {best_fid:.2} at step {best_step}{}) in {}",
                    evaluation.scores.fid,
                    evaluation.n,
                    evaluation.floor.unwrap_or(f64::NAN),
                    if saved { ", saved" } else { "" },
                    format_seconds(seconds)
                )
            }),
        }
    }
}
