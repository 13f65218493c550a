//! The run loop every door drives: `retrato train` runs it to the end, the page's fine-tuning
//! a few steps per call. Around [`Trainer::train_step`] it keeps the batches, reads the
//! losses back (once per chunk of steps: a browser's GPU reads only asynchronously, and every
//! read is a round trip), rolls back a diverged run, decides when a checkpoint, a sample grid
//! or an FID is due and when the run stops. Where things are kept ([`RunStore`]: files, or
//! memory in the page), what time it is ([`Clock`]), how FID is measured ([`Evaluator`]) and
//! what a person sees ([`Observer`]) belong to the door.

mod doors;
mod stop;
pub mod store;

#[cfg(feature = "native")]
pub mod folder;
#[cfg(feature = "native")]
pub mod metrics;
#[cfg(feature = "native")]
pub mod plot;

use std::collections::VecDeque;

use burn::tensor::Tensor;

pub use doors::{Clock, Evaluator, Event, Observer, Silent};
use stop::{Agreed, DECAY_SPEED_MARGIN};
pub use stop::{Limits, Stop, TimeBox};
pub use store::{MemoryStore, Ranked, RunStore};

use super::Trainer;
use super::checkpoint::RunInfo;
use super::collective::average;
use super::config::{OnDivergence, TrainOptions};
use super::objective::loss_names;
use super::params::{Values, read_values};
use crate::data::{Batches, Dataset, Range};
use crate::weights::Evaluation;

/// What one [`Run::advance`] did.
pub struct Advance {
    /// The loss terms of every step done, in [`Run::loss_names`] order (NaN where a step
    /// skipped a network).
    pub rows: Vec<Vec<f32>>,
    /// The step a divergence rolled the run back to, when one did (the rows past it are void).
    pub rolled_back_to: Option<u64>,
    /// Why the run cannot go on; None when only the call's budget ran out.
    pub stop: Option<Stop>,
}

/// The recorded columns of a run: its loss terms, then FID when it measures one.
pub fn columns(train: &TrainOptions, fid: bool) -> Vec<String> {
    let mut columns: Vec<String> = loss_names(train).iter().map(|s| s.to_string()).collect();
    if fid {
        columns.push("fid".into());
    }
    columns
}

/// Seconds kept for writing the last checkpoint, sample grid and model at the end.
const FINISH_SECONDS: f64 = 10.0;

pub struct Run<S: RunStore> {
    pub trainer: Trainer,
    pub info: RunInfo,
    pub dataset: Dataset,
    pub batches: Batches,
    pub total_steps: u64,
    pub store: S,
    pub limits: Limits,
    clock: Box<dyn Clock>,
    evaluator: Option<Box<dyn Evaluator>>,
    /// Whether the run ends with an FID (the time box may leave no room for it).
    final_fid: bool,
    /// The columns of every recorded row: the loss terms, then FID when measured.
    columns: Vec<String>,
    latest: Vec<f64>,
    last_evaluation: Option<(u64, Evaluation)>,
    steps_per_read: u64,
    session_start: f64,
    session_first_step: u64,
    /// (clock, step) after recent chunks, back to the decay window's length: the speed a
    /// placed decay plans with is the recent one, not one slowed by work that has ended.
    recent: VecDeque<(f64, u64)>,
    elapsed_before: f64,
    last_saved: f64,
}

impl<S: RunStore> Run<S> {
    /// A run of `trainer` on `dataset` for the configured epochs, or `total_steps`.
    pub fn new(
        trainer: Trainer,
        info: RunInfo,
        dataset: Dataset,
        total_steps: Option<u64>,
        store: S,
        clock: Box<dyn Clock>,
    ) -> Self {
        let t = &trainer.config.train;
        let batches = Batches {
            count: dataset.count,
            batch_size: t.batch_size.min(dataset.count),
            seed: t.seed,
            flip: t.flip,
        };
        let total_steps = total_steps.unwrap_or(t.epochs as u64 * batches.steps_per_epoch());
        let columns = columns(t, false);
        let now = clock.seconds();
        Self {
            latest: vec![f64::NAN; columns.len()],
            columns,
            session_first_step: trainer.step,
            recent: VecDeque::from([(now, trainer.step)]),
            elapsed_before: info.elapsed_seconds,
            trainer,
            info,
            dataset,
            batches,
            total_steps,
            store,
            limits: Limits::default(),
            clock,
            evaluator: None,
            final_fid: false,
            last_evaluation: None,
            steps_per_read: 1,
            session_start: now,
            last_saved: now,
        }
    }

    /// Measures FID every `run.fid_epochs` epochs and at the end, as a column of its own.
    pub fn with_evaluator(mut self, evaluator: Box<dyn Evaluator>) -> Self {
        self.columns.push("fid".into());
        self.latest.push(f64::NAN);
        self.evaluator = Some(evaluator);
        self.final_fid = true;
        self
    }

    /// Steps run between two reads of their losses (1 by default: every step is recorded
    /// and checked as it happens; more spares a GPU's round trips).
    pub fn with_steps_per_read(mut self, steps: u64) -> Self {
        self.steps_per_read = steps.max(1);
        self
    }

    /// The recorded columns: loss terms, then FID when the run measures it.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The loss terms of [`Advance::rows`].
    pub fn loss_names(&self) -> Vec<&'static str> {
        loss_names(&self.trainer.config.train)
    }

    /// Bounds this session to `seconds` on the clock, keeping time for the final FID and
    /// files; says what that does to the run's end when it measures FID.
    pub fn time_box(&mut self, seconds: f64) -> Option<TimeBox> {
        let left = seconds - self.clock.seconds();
        let Some(estimate) = self.evaluator.as_ref().map(|e| e.estimated_seconds()) else {
            self.limits.deadline = Some(seconds - FINISH_SECONDS);
            return None;
        };
        if estimate + FINISH_SECONDS > left {
            self.final_fid = false;
            self.limits.deadline = Some(seconds - FINISH_SECONDS);
            Some(TimeBox::NoFinalFid { estimate })
        } else {
            self.limits.deadline = Some(seconds - FINISH_SECONDS - estimate);
            Some(TimeBox::FinalFidKept {
                reserve: estimate + FINISH_SECONDS,
            })
        }
    }

    /// Keeps a checkpoint of the run now; returns where.
    pub fn checkpoint(&mut self) -> Result<String, String> {
        self.info.elapsed_seconds = self.wall_seconds();
        self.last_saved = self.clock.seconds();
        self.store.save_checkpoint(&self.trainer, &self.info)
    }

    /// Training time of the run so far, over all sessions.
    pub fn wall_seconds(&self) -> f64 {
        self.elapsed_before + self.session_seconds()
    }

    /// Seconds since this session started.
    pub fn session_seconds(&self) -> f64 {
        self.clock.seconds() - self.session_start
    }

    /// Images per second over this session.
    pub fn images_per_second(&self) -> f64 {
        let steps = self.trainer.step - self.session_first_step;
        steps as f64 * self.batches.batch_size as f64 / self.session_seconds()
    }

    /// Rank 0's answer on every rank of a data-parallel job (a decision that reads a clock
    /// or a Ctrl-C must be the same everywhere); the answer as it is otherwise.
    fn agree<T: Agreed>(&self, answer: Option<T>) -> Option<T> {
        let Some(ranks) = self.trainer.ranks.as_deref() else {
            return answer;
        };
        let mut bytes = vec![answer.map_or(0, T::code)];
        ranks.broadcast(&mut bytes);
        T::from_code(bytes[0])
    }

    /// With [`Limits::decay_seconds`], once the deadline is that near (and some steps have
    /// measured the speed): the learning rates decay linearly from now to `lr_decay_final`
    /// over the steps the speed of the last `decay_seconds` fits before the deadline, and
    /// the session stops there. Placed once and in steps, in the run's config, so a
    /// checkpoint carries it and a resumed run continues the same schedule; a run already
    /// inside a decay keeps its own.
    fn place_decay(&mut self, observer: &mut impl Observer) {
        let (Some(deadline), Some(window)) = (self.limits.deadline, self.limits.decay_seconds)
        else {
            return;
        };
        let step = self.trainer.step;
        let measured = step > self.session_first_step;
        let due = measured && self.clock.seconds() >= deadline - window;
        if self.agree(due.then_some(())).is_none() {
            return;
        }
        self.limits.decay_seconds = None;
        let t = &self.trainer.config.train;
        if t.lr_decay_end > step && t.lr_decay_start <= step {
            let (start, end) = (t.lr_decay_start, t.lr_decay_end);
            observer.event(Event::DecayPlaced {
                start,
                end,
                kept: true,
            });
            return;
        }
        let now = self.clock.seconds();
        let (since, first) = self.recent.front().copied().expect("a sample");
        let steps_per_second = step.saturating_sub(first) as f64 / (now - since).max(1e-9);
        let left = (deadline - now).max(0.0);
        let planned = (left * steps_per_second * DECAY_SPEED_MARGIN) as u64;
        let last = self
            .limits
            .max_steps
            .unwrap_or(u64::MAX)
            .min(self.total_steps);
        let end = self.agree_number((step + planned.max(1)).min(last));
        if end <= step {
            return; // the run stops here anyway
        }
        let train = &mut self.trainer.config.train;
        (train.lr_decay_start, train.lr_decay_end) = (step, end);
        self.limits.max_steps = Some(end);
        observer.event(Event::DecayPlaced {
            start: step,
            end,
            kept: false,
        });
    }

    /// Notes the clock and step for [`Self::place_decay`]'s speed, keeping the newest sample
    /// at least `decay_seconds` old and the ones after it.
    fn note_speed(&mut self) {
        let Some(window) = self.limits.decay_seconds else {
            return;
        };
        let (now, step) = (self.clock.seconds(), self.trainer.step);
        if self.recent.back().is_some_and(|&(_, last)| last > step) {
            self.recent.clear(); // rolled back: the speed is measured afresh
        }
        self.recent.push_back((now, step));
        while self.recent.get(1).is_some_and(|&(t, _)| t <= now - window) {
            self.recent.pop_front();
        }
    }

    /// Rank 0's number on every rank of a data-parallel job.
    fn agree_number(&self, number: u64) -> u64 {
        let Some(ranks) = self.trainer.ranks.as_deref() else {
            return number;
        };
        let mut bytes = number.to_le_bytes().to_vec();
        ranks.broadcast(&mut bytes);
        u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }

    /// Why the run cannot take another step, if it cannot.
    fn stop_reason(&self, observer: &impl Observer) -> Option<Stop> {
        let step = self.trainer.step;
        if step >= self.total_steps {
            Some(Stop::Finished)
        } else if self.limits.max_steps.is_some_and(|max| step >= max) {
            Some(Stop::MaxSteps)
        } else if (self.limits.deadline).is_some_and(|limit| self.clock.seconds() >= limit) {
            Some(Stop::Deadline)
        } else if observer.interrupted() {
            Some(Stop::Interrupted)
        } else {
            None
        }
    }

    /// Up to `budget` training steps (all of them to a stop with `u64::MAX`).
    pub async fn advance(
        &mut self,
        budget: u64,
        observer: &mut impl Observer,
    ) -> Result<Advance, String> {
        let mut advance = Advance {
            rows: Vec::new(),
            rolled_back_to: None,
            stop: None,
        };
        let mut done = 0;
        loop {
            self.place_decay(observer);
            if let Some(stop) = self.agree(self.stop_reason(observer)) {
                advance.stop = Some(stop);
                return Ok(advance);
            }
            if done >= budget {
                return Ok(advance);
            }
            let step = self.trainer.step;
            let end = self.limits.max_steps.unwrap_or(u64::MAX);
            let chunk = (budget - done)
                .min(self.steps_per_read)
                .min(self.total_steps.min(end) - step);
            let started = self.clock.seconds();
            let (values, present) = self.train_chunk(chunk);
            let mut flat = read_values(Values(values)).await?.concat();
            if let Some(ranks) = self.trainer.ranks.as_deref() {
                // Every rank sees the job's losses, so all decide alike (rollback, stop).
                average(ranks, &mut flat);
            }
            let per_step = (self.clock.seconds() - started) / chunk as f64;
            done += chunk;
            let names = self.loss_names();
            let width = names.len().max(1);
            let mut rolled_back = false;
            for (i, (row, present)) in flat.chunks(width).zip(present.chunks(width)).enumerate() {
                let step = step + i as u64 + 1;
                if let Some(problem) = self.divergence(step, &names, row, present) {
                    self.roll_back(&problem, observer)?;
                    advance.rolled_back_to = Some(self.trainer.step);
                    rolled_back = true;
                    break;
                }
                let last = i as u64 + 1 == chunk;
                self.record(step, &names, row, present, per_step, last, observer)?;
                advance.rows.push(row.to_vec());
            }
            if !rolled_back {
                self.after_chunk(step, observer)?;
            }
            self.note_speed();
        }
    }

    /// `count` steps; every loss term of each, in [`Self::loss_names`] order, still on the
    /// device (a NaN stands in for a term the step skipped), and which terms were computed.
    fn train_chunk(&mut self, count: u64) -> (Vec<Tensor<1>>, Vec<bool>) {
        let names = self.loss_names();
        let device = self.trainer.device().clone();
        let range = match self.trainer.config.unit_range() {
            true => Range::ZeroToOne,
            false => Range::MinusOneToOne,
        };
        let mut values = Vec::new();
        let mut present = Vec::new();
        let (rank, ranks) = self.trainer.shard();
        for _ in 0..count {
            let (indices, flips) = self.batches.at(self.trainer.step);
            // This rank's shard of the global batch.
            let local = indices.len() / ranks;
            let shard = rank * local..(rank + 1) * local;
            let (indices, flips) = (&indices[shard.clone()], &flips[shard]);
            let real = self.dataset.batch(indices, flips, range, &device);
            let losses = self.trainer.train_step(real).0;
            for name in &names {
                let value = losses.iter().find(|(n, _)| n == name);
                present.push(value.is_some());
                values.push(match value {
                    Some((_, tensor)) => tensor.clone(),
                    None => Tensor::full([1], f32::NAN, &device),
                });
            }
        }
        (values, present)
    }

    /// A loss term of `step` that is not finite or beyond `run.divergence_threshold`.
    fn divergence(
        &self,
        step: u64,
        names: &[&str],
        row: &[f32],
        present: &[bool],
    ) -> Option<String> {
        let threshold = self.trainer.config.run.divergence_threshold;
        let bad = |v: f64| !v.is_finite() || v.abs() > threshold;
        (names.iter().zip(row).zip(present))
            .find(|((_, v), real)| **real && bad(f64::from(**v)))
            .map(|((name, value), _)| format!("step {step}: {name} = {value}"))
    }

    /// Rolls back to the newest checkpoint with lower learning rates, or stops, as configured.
    fn roll_back(&mut self, problem: &str, observer: &mut impl Observer) -> Result<(), String> {
        let device = self.trainer.device().clone();
        let Some((mut trainer, saved_info, checkpoint)) = self.store.latest_checkpoint(&device)?
        else {
            return Err(format!(
                "{problem}: training diverged and there is no checkpoint to roll back to"
            ));
        };
        let run = trainer.config.run.clone();
        if run.on_divergence == OnDivergence::Stop {
            return Err(format!(
                "{problem}: training diverged; stopped (on_divergence = \"stop\"). The last good checkpoint is {checkpoint}"
            ));
        }
        let rollbacks = self.info.rollbacks.max(saved_info.rollbacks) + 1;
        if rollbacks > run.max_rollbacks {
            return Err(format!(
                "{problem}: training diverged again after {} rollbacks; stopping. The last good checkpoint is {checkpoint}",
                run.max_rollbacks
            ));
        }
        trainer.lr_scale *= run.lr_backoff;
        trainer.ranks = self.trainer.ranks.clone();
        observer.event(Event::RolledBack {
            problem: problem.to_string(),
            step: trainer.step,
            checkpoint,
            lr_scale: trainer.lr_scale,
        });
        self.store.restart_records(trainer.step)?;
        self.trainer = trainer;
        self.info = RunInfo {
            rollbacks,
            ..saved_info
        };
        self.latest.fill(f64::NAN);
        Ok(())
    }

    /// One step's row of the metrics; at the chunk's `last` step, the FID when one is due
    /// (measured on the networks as they are now, which is that step).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        step: u64,
        names: &[&str],
        row: &[f32],
        present: &[bool],
        seconds_per_step: f64,
        last: bool,
        observer: &mut impl Observer,
    ) -> Result<(), String> {
        for ((name, value), real) in names.iter().zip(row).zip(present) {
            if let (true, Some(i)) = (*real, self.columns.iter().position(|c| c == name)) {
                self.latest[i] = f64::from(*value);
            }
        }
        let epoch = self.batches.epoch_of(step - 1) + 1;
        let end_of_epoch = step.is_multiple_of(self.batches.steps_per_epoch());
        let fid_epochs = self.trainer.config.run.fid_epochs as u64;
        if last && end_of_epoch && fid_epochs > 0 && epoch.is_multiple_of(fid_epochs) {
            let fits = |e: &dyn Evaluator| {
                let done_by = self.clock.seconds() + e.estimated_seconds();
                self.limits.deadline.is_none_or(|limit| done_by < limit)
            };
            if self.evaluator.as_deref().is_some_and(fits) {
                let evaluation = self.measure(observer)?;
                *self.latest.last_mut().expect("a FID column") = evaluation.scores.fid;
                self.last_evaluation = Some((step, evaluation));
            }
        }
        let rate = self.batches.batch_size as f64 / seconds_per_step;
        let wall = self.wall_seconds();
        self.store.record(step, epoch, &self.latest, rate, wall)?;
        if self.evaluator.is_some() {
            *self.latest.last_mut().expect("a FID column") = f64::NAN;
        }
        Ok(())
    }

    /// Progress, then what is due at the end of an epoch (samples, plot, checkpoint) or
    /// after `run.checkpoint_minutes`.
    fn after_chunk(&mut self, first_step: u64, observer: &mut impl Observer) -> Result<(), String> {
        let step = self.trainer.step;
        let per_epoch = self.batches.steps_per_epoch();
        let epoch = self.batches.epoch_of(step - 1) + 1;
        // Whether an epoch ended within the chunk (exactly at its end for one step a chunk).
        let epoch_ended = step / per_epoch > first_step / per_epoch;
        let summary = self.summary();
        observer.event(Event::Progress {
            epoch,
            step,
            rate: self.images_per_second(),
            summary: summary.clone(),
        });
        self.info.elapsed_seconds = self.wall_seconds();
        let run = &self.trainer.config.run;
        if epoch_ended {
            let samples = epoch.is_multiple_of(run.sample_epochs as u64);
            let checkpoint = epoch.is_multiple_of(run.checkpoint_epochs as u64);
            self.store.epoch_done(&self.trainer, epoch, samples)?;
            if checkpoint {
                self.checkpoint()?;
            }
            observer.event(Event::EpochDone {
                epoch,
                step,
                summary,
            });
        } else {
            let due = self.clock.seconds() - self.last_saved >= run.checkpoint_minutes * 60.0;
            if self.agree(Some(()).filter(|_| due)).is_some() {
                self.checkpoint()?;
            }
        }
        Ok(())
    }

    /// The latest value of every loss term (and FID), `name=value`.
    fn summary(&self) -> String {
        (self.columns.iter().zip(&self.latest))
            .filter(|(_, v)| v.is_finite())
            .map(|(n, v)| format!("{n}={v:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One FID measurement; when it is the run's best, its checkpoint is kept apart.
    fn measure(&mut self, observer: &mut impl Observer) -> Result<Evaluation, String> {
        let evaluator = self
            .evaluator
            .as_ref()
            .expect("measured only with an evaluator");
        let started = self.clock.seconds();
        let evaluation = evaluator.measure(&self.trainer)?;
        let fid = evaluation.scores.fid;
        let saved = self.info.best_fid.is_none_or(|(best, _)| fid < best);
        self.info.elapsed_seconds = self.wall_seconds();
        if saved {
            self.info.best_fid = Some((fid, self.trainer.step));
            self.store.save_best(&self.trainer, &self.info)?;
        }
        observer.event(Event::Fid {
            step: self.trainer.step,
            evaluation: Box::new(evaluation.clone()),
            best: self.info.best_fid.expect("set above"),
            saved,
            seconds: self.clock.seconds() - started,
        });
        Ok(evaluation)
    }

    /// Ends the session: the final FID (unless interrupted or left no time), then the store's
    /// last files. Returns the FID of the networks as they end, when measured.
    pub fn finish(
        &mut self,
        stop: Stop,
        observer: &mut impl Observer,
    ) -> Result<Option<Evaluation>, String> {
        let step = self.trainer.step;
        let measured_now = self
            .last_evaluation
            .as_ref()
            .is_some_and(|(s, _)| *s == step);
        if self.evaluator.is_some() && stop != Stop::Interrupted && self.final_fid && !measured_now
        {
            let evaluation = self.measure(observer)?;
            self.last_evaluation = Some((step, evaluation));
        }
        self.info.elapsed_seconds = self.wall_seconds();
        let evaluation = (self.last_evaluation.take())
            .filter(|(s, _)| *s == step)
            .map(|(_, e)| e);
        let epoch = self.batches.epoch_of(step.saturating_sub(1)) + 1;
        (self.store).finish(&self.trainer, &self.info, epoch, evaluation.clone())?;
        Ok(evaluation)
    }
}
