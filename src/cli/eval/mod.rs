//! `retrato eval`: quality measurements. `fid` compares two image sets, or a model's
//! portraits with a reference set (FID, KID, precision/recall, the mode-collapse check and
//! the real-vs-real floor); `nearest` shows portraits beside their nearest training images;
//! `features` writes Inception pool3 features (what `bench/fid_reference.py` checks).

mod features;
mod fid;
mod nearest;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use retrato::eval::extractor::Extractor;
use retrato::eval::sets::{Features, Set};

use super::device::DeviceChoice;

use retrato::train::config::DEFAULT_INCEPTION;

#[derive(clap::Subcommand)]
pub enum Command {
    /// FID, KID, precision/recall and diversity: a model against a reference set
    /// (--model G --ref R [--floor TRAIN]) or two image sets (--real A --real B).
    Fid(fid::Args),
    /// Portraits each beside their nearest training images (Inception features): does the
    /// model copy its training set?
    Nearest(nearest::Args),
    /// Inception-v3 pool3 features (N×2048 float32 .npy) of the first N images of a set.
    Features(features::Args),
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Fid(args) => fid::run(args),
        Command::Nearest(args) => nearest::run(args),
        Command::Features(args) => features::run(args),
    }
}

/// The FID network and how to run it; shared by every `eval` command.
#[derive(clap::Args)]
struct NetworkArgs {
    /// The FID Inception weights: the staged f16 file, or the exact f32 ones
    /// (`bench/export_inception_f32.py`).
    #[arg(long, default_value = DEFAULT_INCEPTION)]
    inception: PathBuf,
    /// Images per forward pass (default: 16 on cpu, 64 on wgpu).
    #[arg(long)]
    batch: Option<usize>,
    /// Recompute features of real sets instead of reading them from the cache.
    #[arg(long)]
    no_cache: bool,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
}

impl NetworkArgs {
    fn extractor(&self) -> Result<Extractor> {
        let device = self.device.device()?;
        let batch = self.batch.unwrap_or(match self.device {
            DeviceChoice::Cpu => 16,
            DeviceChoice::Wgpu => 64,
        });
        let cache =
            (!self.no_cache).then(|| retrato::data::cache::default_cache_dir().join("features"));
        Extractor::open(&self.inception, cache, batch, &device).map_err(anyhow::Error::msg)
    }
}

/// A bar on stderr for `len` images through Inception (hidden when stderr is not a
/// terminal, so logs and `--json` stay clean).
/// A set's Inception features, with a progress bar while they are computed.
pub(crate) fn features(set: Set, extractor: &Extractor) -> Result<Features> {
    let bar = progress_bar(set.count(), &short(set.label()));
    let features = set.features(extractor, &mut |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    features
}

/// The file name part of a label, for progress bars.
fn short(label: &str) -> String {
    let name = label.split(" (").next().unwrap_or(label);
    std::path::Path::new(name)
        .file_name()
        .map_or(name.to_string(), |f| f.to_string_lossy().into_owned())
}

pub(crate) fn progress_bar(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images, {per_sec} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}
