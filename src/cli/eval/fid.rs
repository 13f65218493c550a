//! `retrato eval fid`: every quality number for a model (or between two real sets), with
//! the real-vs-real floor that makes a FID on a few thousand images interpretable.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use retrato::eval::inception::FEATURES;
use retrato::eval::neighbours::NEAR_DUPLICATE_QUANTILE;
use retrato::eval::scores::{ScoreOptions, Scores, score};
use retrato::eval::stats::frechet_distance_of_features;
use retrato::weights::{Evaluation, replace_header};

use super::NetworkArgs;
use crate::cli::files::{load_model, write_atomic};
use retrato::eval::sets::{Features, Set, generate, read_set};

#[derive(clap::Args)]
pub struct Args {
    /// An image set: uint8 N×S×S×3 .npy, a folder / .tar / .zip (decoded at --size), or
    /// features already computed (float32 N×2048 .npy from `eval features`).
    /// Give it twice to compare two sets.
    #[arg(long = "real", value_name = "SET")]
    real: Vec<PathBuf>,
    /// A model file whose portraits (seeds --seed, portraits 0..n) are compared with --ref (a
    /// training checkpoint: its moving average, as the model it ships).
    #[arg(long, requires = "reference")]
    model: Option<PathBuf>,
    /// The reference set for --model (usually a held-out test set).
    #[arg(long = "ref", value_name = "SET")]
    reference: Option<PathBuf>,
    /// Real images (usually the training set) measured against --ref at the same N: the
    /// real-vs-real floor, the best FID a model can expect at this N.
    #[arg(long, value_name = "SET", requires = "model")]
    floor: Option<PathBuf>,
    /// Images taken from each set (the first N) or generated.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side at which folders and archives are decoded.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// KID: random subsets and their size (the size is capped at N).
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// Neighbours for precision/recall (Kynkäänniemi et al. 2019).
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Write the result into the model file's header (its card: FID, KID, reference, N).
    #[arg(long, requires = "model")]
    record: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    network: NetworkArgs,
}

pub fn run(args: Args) -> Result<()> {
    let extractor = args.network.extractor()?;
    let device = args.network.device.device()?;
    let n = Some(args.n);
    let (a, b, floor) = match (&args.model, &args.reference, args.real.as_slice()) {
        (Some(model), Some(reference), []) => (
            Set::Images(generate(model, args.n, args.seed, &device)?),
            read_set(reference, args.size, n)?,
            args.floor
                .as_ref()
                .map(|f| read_set(f, args.size, n))
                .transpose()?,
        ),
        (None, None, [first, second]) => (
            read_set(first, args.size, n)?,
            read_set(second, args.size, n)?,
            None,
        ),
        _ => bail!("give either --real A --real B, or --model G --ref R"),
    };
    let start = Instant::now();
    let fa = crate::cli::eval::features(a, &extractor)?;
    let fb = crate::cli::eval::features(b, &extractor)?;
    let floor = floor
        .map(|f| crate::cli::eval::features(f, &extractor))
        .transpose()?;
    let feature_seconds = start.elapsed().as_secs_f64();
    let options = ScoreOptions {
        k: args.k,
        kid_subsets: args.kid_subsets,
        kid_subset_size: args.kid_subset_size,
        seed: args.seed,
        collapse: true,
    };
    let scores = score(&fa.values, &fb.values, FEATURES, options).map_err(anyhow::Error::msg)?;
    let floor_fid = floor
        .as_ref()
        .map(|f| frechet_distance_of_features(&f.values, &fb.values, FEATURES))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let seconds = start.elapsed().as_secs_f64();
    let computed = fa.computed + fb.computed + floor.as_ref().map_or(0, |f| f.computed);
    let network = extractor.network_label();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "fid": scores.fid, "kid": scores.kid, "kid_std": scores.kid_std,
                "precision": scores.precision, "recall": scores.recall, "k": args.k,
                "collapse": scores.collapse,
                "floor": floor_fid, "floor_set": floor.as_ref().map(|f| &f.label),
                "a": fa.label, "b": fb.label, "n_a": fa.count(), "n_b": fb.count(),
                "kid_subsets": args.kid_subsets, "kid_subset_size": args.kid_subset_size.min(args.n),
                "network": network,
                "feature_seconds": feature_seconds, "seconds": seconds,
                "images_through_inception": computed,
            })
        );
    } else {
        print_report(
            &fa,
            &fb,
            &scores,
            floor.as_ref().zip(floor_fid),
            &network,
            args.k,
        );
        match computed {
            0 => println!("time       {seconds:.0} s (all features given or cached)"),
            n => println!(
                "time       {seconds:.0} s ({n} images through Inception at {:.1}/s)",
                n as f64 / feature_seconds
            ),
        }
    }
    if let (true, Some(model), Some(reference)) = (args.record, &args.model, &args.reference) {
        let evaluation = Evaluation {
            reference: file_name(reference),
            n: args.n,
            seed: args.seed,
            network,
            scores,
            floor: floor_fid,
            floor_set: args.floor.as_deref().map(file_name),
            measured: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        };
        record(model, evaluation)?;
    }
    Ok(())
}

fn print_report(
    a: &Features,
    b: &Features,
    scores: &Scores,
    floor: Option<(&Features, f64)>,
    network: &str,
    k: usize,
) {
    println!("A          {} ({} images)", a.label, a.count());
    println!("B          {} ({} images)", b.label, b.count());
    println!("network    {network}");
    println!("FID        {:.3}", scores.fid);
    match floor {
        Some((set, fid)) => println!(
            "floor      {fid:.3} (real vs real: {} against B, {} images)",
            set.label,
            set.count()
        ),
        None if a.label.contains("portraits") => println!(
            "floor      not measured: add --floor <training set> (FID of as many real images against B)"
        ),
        None => {}
    }
    println!("KID        {:.5} ± {:.5}", scores.kid, scores.kid_std);
    println!(
        "precision  {:.3}, recall {:.3} (of A with respect to B, k = {k})",
        scores.precision, scores.recall
    );
    if let Some(c) = &scores.collapse {
        println!(
            "diversity  {:.3} × B's (mean feature distance {:.2} against {:.2})",
            c.diversity_ratio, c.mean_distance_fake, c.mean_distance_real
        );
        println!(
            "duplicates {:.1} % of A have a near-twin in A (closer than {:.2}; {:.0} % of B do in B)",
            100.0 * c.near_duplicate_share,
            c.near_duplicate_distance,
            100.0 * NEAR_DUPLICATE_QUANTILE
        );
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
}

/// Writes the evaluation into the model file's header (atomically; tensors untouched).
fn record(model: &Path, evaluation: Evaluation) -> Result<()> {
    let mut header = load_model(model)?.header;
    header.metrics.extend(evaluation.metrics());
    header.evaluation = Some(evaluation);
    let bytes = std::fs::read(model)?;
    let updated =
        replace_header(&bytes, &header).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    write_atomic(model, &updated)?;
    eprintln!("recorded in {}", model.display());
    Ok(())
}
