//! All Rust integration tests, in one binary so that burn is linked once, not once per file.

#[cfg(feature = "native")]
mod cli;
mod latent;
mod models;
#[cfg(feature = "native")]
mod pytorch_parity;
mod weights;
