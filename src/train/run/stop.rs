//! When a run stops: its limits, the reasons, the time box, and the decisions every rank of
//! a data-parallel job must take alike.

/// Why the loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every step of the run's epochs is done.
    Finished,
    /// [`Limits::max_steps`].
    MaxSteps,
    /// [`Limits::deadline`].
    Deadline,
    Interrupted,
}

/// A decision the ranks of a job share, as one byte (0 for none).
pub(super) trait Agreed: Sized {
    fn code(self) -> u8;
    fn from_code(code: u8) -> Option<Self>;
}

impl Agreed for () {
    fn code(self) -> u8 {
        1
    }
    fn from_code(code: u8) -> Option<Self> {
        (code == 1).then_some(())
    }
}

impl Agreed for Stop {
    fn code(self) -> u8 {
        self as u8 + 1
    }
    fn from_code(code: u8) -> Option<Self> {
        [
            Stop::Finished,
            Stop::MaxSteps,
            Stop::Deadline,
            Stop::Interrupted,
        ]
        .get((code as usize).checked_sub(1)?)
        .copied()
    }
}

/// Where a session ends early.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// The run's step (all sessions counted) to stop at.
    pub max_steps: Option<u64>,
    /// The clock reading to stop training at (the final FID and files come after).
    pub deadline: Option<f64>,
    /// Seconds before the deadline at which the learning rates start their final decay
    /// (`train --decay-minutes`): a decay placed in steps by the measured speed.
    pub decay_seconds: Option<f64>,
}

/// Of the steps the measured speed fits before the deadline, the share a placed decay
/// plans for: a machine that slows a little still ends the decay before the deadline does.
pub(super) const DECAY_SPEED_MARGIN: f64 = 0.95;

/// What a time box does to a run that measures FID.
pub enum TimeBox {
    /// No time for the final FID (expected to take `estimate` seconds): it is skipped.
    NoFinalFid { estimate: f64 },
    /// Training stops `reserve` seconds before the end, for the final FID and files.
    FinalFidKept { reserve: f64 },
}
