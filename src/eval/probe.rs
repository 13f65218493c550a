//! FID during training, as the run loop's [`Evaluator`] (`run.fid_epochs`): portraits 0..n of a fixed seed from the sampling
//! generator against a held-out reference set, with the real-vs-real floor (as many
//! training images against the same reference) measured once at the start.

use std::path::Path;

use anyhow::{Context, Result};

use super::extractor::Extractor;
use super::inception::FEATURES;
use super::scores::{ScoreOptions, score};
use super::sets::{ImageSet, Set, read_set};
use super::stats::frechet_distance_of_features;
use crate::data::Dataset;
use crate::train::Trainer;
use crate::train::config::RunOptions;
use crate::train::run::Evaluator;
use crate::weights::Evaluation;

/// Seed of the portraits behind every FID of a run (the same ones each time).
pub const FID_SEED: u64 = 0;

pub struct FidProbe {
    extractor: Extractor,
    reference: Vec<f32>,
    reference_name: String,
    n: usize,
    floor: Option<f64>,
    floor_set: String,
    /// Seconds one measurement is expected to take (timed on a few portraits at open).
    estimated_seconds: f64,
}

/// Portraits timed at open to estimate a measurement's duration.
const TIMED_PORTRAITS: usize = 16;

impl FidProbe {
    /// None when the run measures no FID; reads (or computes once, then caches) the
    /// reference's and the floor's features. `say` is told what a person should know (why
    /// there is no FID, or how it will be measured).
    pub fn open(
        run: &RunOptions,
        train: &Dataset,
        data: &Path,
        trainer: &Trainer,
        say: &mut dyn FnMut(String),
    ) -> Result<Option<Self>> {
        if run.fid_epochs == 0 {
            return Ok(None);
        }
        // The presets measure against the project's shared data; on a machine without it
        // the run trains anyway, with one line saying why there is no FID.
        for (key, file) in [
            ("run.fid_reference", &run.fid_reference),
            ("run.fid_inception", &run.fid_inception),
        ] {
            if !Path::new(file).exists() {
                say(format!(
                    "note: no FID during this run: {key} {file} does not exist (set it, or --set run.fid_epochs=0 to silence this)"
                ));
                return Ok(None);
            }
        }
        let device = trainer.device().clone().inner();
        let cache = crate::data::cache::default_cache_dir().join("features");
        let extractor = Extractor::open(Path::new(&run.fid_inception), Some(cache), 16, &device)
            .map_err(anyhow::Error::msg)
            .context("run.fid_inception")?;
        let path = Path::new(&run.fid_reference);
        let reference = read_set(path, train.size, None)
            .context("run.fid_reference")?
            .features(&extractor, &mut |_| {})?;
        let n = run.fid_images.min(reference.count()).min(train.count);
        if n < run.fid_images {
            say(format!(
                "note: FID on {n} images (run.fid_images = {}, but the reference or the training set holds fewer)",
                run.fid_images
            ));
        }
        let mut reference = reference.values;
        reference.truncate(n * FEATURES);
        let per_image = train.size * train.size * 3;
        let floor_set = ImageSet {
            label: format!("{} (first {n})", data.display()),
            pixels: train.pixels[..n * per_image].to_vec(),
            size: train.size,
            real: true,
        };
        let floor_features = Set::Images(floor_set).features(&extractor, &mut |_| {})?;
        let floor = frechet_distance_of_features(&floor_features.values, &reference, FEATURES)
            .map_err(anyhow::Error::msg)?;
        let reference_name = path.file_name().map_or(run.fid_reference.clone(), |f| {
            f.to_string_lossy().into_owned()
        });
        let estimated_seconds = estimate_seconds(&extractor, trainer, n)?;
        say(format!(
            "FID every {} epochs: {n} portraits against {reference_name}; real-vs-real floor {floor:.2}; ~{:.0} s each",
            run.fid_epochs, estimated_seconds
        ));
        Ok(Some(Self {
            estimated_seconds,
            extractor,
            reference,
            reference_name,
            n,
            floor: Some(floor),
            floor_set: data
                .file_name()
                .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
        }))
    }

    /// FID and the rest of `eval fid`'s numbers for the trainer's sampling generator now.
    fn evaluate(&self, trainer: &Trainer) -> Result<Evaluation> {
        let generator = trainer.sampling_generator();
        let device = generator.device();
        let (pixels, size) = crate::sample::portrait_pixels(&generator, FID_SEED, self.n, &device);
        let portraits = self
            .extractor
            .features(&pixels, size, &mut |_| {})
            .map_err(anyhow::Error::msg)?;
        let options = ScoreOptions {
            seed: FID_SEED,
            ..ScoreOptions::default()
        };
        let scores =
            score(&portraits, &self.reference, FEATURES, options).map_err(anyhow::Error::msg)?;
        Ok(Evaluation {
            reference: self.reference_name.clone(),
            n: self.n,
            seed: FID_SEED,
            network: self.extractor.network_label(),
            scores,
            floor: self.floor,
            floor_set: Some(self.floor_set.clone()),
            measured: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        })
    }
}

impl Evaluator for FidProbe {
    fn estimated_seconds(&self) -> f64 {
        self.estimated_seconds
    }

    fn measure(&self, trainer: &Trainer) -> Result<Evaluation, String> {
        self.evaluate(trainer).map_err(|e| format!("{e:#}"))
    }
}

/// A measurement's expected duration: a few portraits drawn and run through the network,
/// scaled to `n`, plus a margin for the scores (KID subsets, nearest neighbours).
fn estimate_seconds(extractor: &Extractor, trainer: &Trainer, n: usize) -> Result<f64> {
    let start = std::time::Instant::now();
    let generator = trainer.sampling_generator();
    let count = TIMED_PORTRAITS.min(n);
    let (pixels, size) =
        crate::sample::portrait_pixels(&generator, FID_SEED, count, &generator.device());
    extractor
        .features(&pixels, size, &mut |_| {})
        .map_err(anyhow::Error::msg)?;
    let per_portrait = start.elapsed().as_secs_f64() / count as f64;
    Ok(per_portrait * n as f64 * 1.15 + 5.0)
}
