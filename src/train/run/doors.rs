//! What a door gives the run loop (a clock, an FID measurement) and what it hears from it
//! (events, and whether a person asked it to stop).

use crate::train::Trainer;
use crate::weights::Evaluation;

/// Seconds since some fixed origin (natively the command's start).
pub trait Clock {
    fn seconds(&self) -> f64;
}

#[cfg(not(target_arch = "wasm32"))]
impl Clock for std::time::Instant {
    fn seconds(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }
}

/// FID during training (`run.fid_epochs`), measured the door's way.
pub trait Evaluator {
    /// How long one measurement is expected to take, for the time box.
    fn estimated_seconds(&self) -> f64;
    fn measure(&self, trainer: &Trainer) -> Result<Evaluation, String>;
}

/// What the loop tells a person, and whether they asked it to stop.
pub trait Observer {
    fn event(&mut self, event: Event);
    fn interrupted(&self) -> bool {
        false
    }
}

/// A door that shows nothing (the page reads [`super::Advance`] instead).
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: Event) {}
}

pub enum Event {
    /// After every chunk of steps.
    Progress {
        epoch: u64,
        step: u64,
        /// Images per second over this session.
        rate: f64,
        /// The latest loss terms, `name=value` joined by spaces.
        summary: String,
    },
    EpochDone {
        epoch: u64,
        step: u64,
        summary: String,
    },
    RolledBack {
        problem: String,
        step: u64,
        checkpoint: String,
        lr_scale: f64,
    },
    /// `--decay-minutes`: the learning rates decay linearly over steps `start`..`end` and
    /// the session stops at `end`; `kept` when the run was already inside a decay of its own.
    DecayPlaced { start: u64, end: u64, kept: bool },
    Fid {
        step: u64,
        evaluation: Box<Evaluation>,
        best: (f64, u64),
        saved: bool,
        seconds: f64,
    },
}
