//! Training: every algorithm of the reports (BCE GAN, WGAN with clipping, WGAN-GP, VAE) as one
//! step function on any autodiff device ([`Trainer`]), shared by the CLI and the page, plus
//! what a long run needs around it natively (data batches, checkpoints, logs, plots).

pub mod augment;
pub mod checkpoint;
pub mod config;
pub mod objective;
pub mod params;
pub mod trainer;

pub use config::{Augment, Objective, TrainConfig};
pub use trainer::{StepLosses, Trainer};
