//! `--decay-minutes` in the library's run loop, on a clock the test moves: the decay is
//! placed in steps by the measured speed, the session stops at its end before the deadline,
//! and a run already inside a decay keeps its own.

use std::cell::Cell;
use std::rc::Rc;

use burn::tensor::Device;
use retrato::train::checkpoint::RunInfo;
use retrato::train::run::{Clock, Event, MemoryStore, Observer, Run, Stop};
use retrato::train::{TrainConfig, Trainer};

use crate::toy::toy_dataset;

/// A clock that only the test moves.
struct TestClock(Rc<Cell<f64>>);

impl Clock for TestClock {
    fn seconds(&self) -> f64 {
        self.0.get()
    }
}

/// Moves the clock as each step ends (by `seconds(step)`, as if the step took that long)
/// and remembers the decays the loop placed: (start, end, kept).
struct Steps<F: Fn(u64) -> f64> {
    now: Rc<Cell<f64>>,
    seconds: F,
    decays: Vec<(u64, u64, bool)>,
}

impl<F: Fn(u64) -> f64> Observer for Steps<F> {
    fn event(&mut self, event: Event) {
        match event {
            Event::Progress { step, .. } => self.now.set(self.now.get() + (self.seconds)(step)),
            Event::DecayPlaced { start, end, kept } => self.decays.push((start, end, kept)),
            _ => {}
        }
    }
}

/// How a run ended: why, at which step, the decays placed, and the run's decay window.
struct Ended {
    stop: Stop,
    step: u64,
    decays: Vec<(u64, u64, bool)>,
    window: (u64, u64),
}

/// A small MLP GAN run on toy faces, a deadline at 100 s with a 20 s decay window, from the
/// decay window `decay` in its config, on a clock that moves 1 s per step.
fn run_to_a_stop(decay: Option<(u64, u64)>) -> Ended {
    run_on_a_clock(decay, |_| 1.0)
}

/// [`run_to_a_stop`] with the clock moving `seconds(step)` after each step.
fn run_on_a_clock(decay: Option<(u64, u64)>, seconds: impl Fn(u64) -> f64) -> Ended {
    let model = serde_json::json!({
        "family": "mlp", "latent_dim": 8, "g_hidden": [16], "d_hidden": [16], "image_size": 16,
    });
    let (start, end) = decay.unwrap_or((0, 0));
    let train = serde_json::json!({ "batch_size": 8, "augment": [], "epochs": 1000,
        "lr_decay_start": start, "lr_decay_end": end });
    let config: TrainConfig =
        serde_json::from_value(serde_json::json!({ "model": model, "train": train })).unwrap();
    let trainer = Trainer::new(config, &Device::flex().autodiff()).unwrap();
    let now = Rc::new(Cell::new(0.0));
    let clock = Box::new(TestClock(now.clone()));
    let store = MemoryStore::default();
    let dataset = toy_dataset(16, 16);
    let mut run = Run::new(trainer, RunInfo::default(), dataset, None, store, clock);
    run.limits.deadline = Some(100.0);
    run.limits.decay_seconds = Some(20.0);
    let mut steps = Steps {
        now,
        seconds,
        decays: Vec::new(),
    };
    let stop = loop {
        let advance = pollster::block_on(run.advance(1, &mut steps)).unwrap();
        if let Some(stop) = advance.stop {
            break stop;
        }
    };
    let t = &run.trainer.config.train;
    Ended {
        stop,
        step: run.trainer.step,
        decays: steps.decays,
        window: (t.lr_decay_start, t.lr_decay_end),
    }
}

#[test]
fn the_final_decay_is_placed_by_the_measured_speed_and_ends_the_session() {
    // At 80 s (step 80, 1 step/s), 20 s are left: 95 % of the 20 steps they fit.
    let Ended {
        stop,
        step,
        decays,
        window,
    } = run_to_a_stop(None);
    assert_eq!(decays, vec![(80, 99, false)]);
    assert_eq!(window, (80, 99), "the run's config carries the decay");
    assert_eq!(
        (stop, step),
        (Stop::MaxSteps, 99),
        "stops at the decay's end"
    );
}

#[test]
fn a_run_inside_its_own_decay_keeps_it() {
    let Ended {
        stop,
        step,
        decays,
        window,
    } = run_to_a_stop(Some((50, 200)));
    assert_eq!(decays, vec![(50, 200, true)]);
    assert_eq!(window, (50, 200));
    assert_eq!(stop, Stop::Deadline, "at step {step}");
    // A decay planned for later is replaced by the one that fits the time box.
    let later = run_to_a_stop(Some((150, 200)));
    assert_eq!((later.decays, later.step), (vec![(80, 99, false)], 99));
}

/// A session slowed at first (3 s a step for 10 steps: another job on the cores) plans the
/// decay with the speed of the last 20 s, not the session's average (0.75 steps/s at 80 s,
/// which would stop at step 74 with 6 s unused).
#[test]
fn the_decay_plans_with_the_recent_speed() {
    let slow_start = run_on_a_clock(None, |step| if step <= 10 { 3.0 } else { 1.0 });
    assert_eq!(slow_start.decays, vec![(60, 79, false)]);
    assert_eq!(slow_start.step, 79);
}
