//! Native CLI: argument parsing and one module per command. Errors end as one line on stderr
//! (`error: FILE: reason`) and a non-zero exit code, never a panic.

mod average;
mod bench;
mod convert;
mod data;
mod device;
mod eval;
mod files;
mod info;
mod init;
mod invert;
mod ranks;
mod sample;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// retrato: portrait GANs on your own machine and in the browser.
///
/// Create a model, draw portraits from it, look inside a model file. The same model files run
/// in the retrato web page.
#[derive(Parser)]
#[command(version, propagate_version = true, max_term_width = 100, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  retrato init --family dcgan --out g.safetensors
  retrato sample --model g.safetensors --n 16 --seed 7 --out grid.png
  retrato interpolate --model g.safetensors --from 3 --to 9 --steps 8 --out strip.png
  retrato info g.safetensors
  retrato convert --model g.safetensors --storage int8 --out g-int8.safetensors
  retrato average --model runs/a/resume.safetensors --model runs/b/resume.safetensors \\
      --storage int8 --out soup.safetensors
  retrato train --config configs/dcgan-celeba-hq.toml --data faces.tar --out runs/celeba
  retrato train --resume --data faces.tar --out runs/celeba
  retrato finetune --from celeba-64.safetensors --data my-paintings/ --out runs/mine
  retrato data preview --data faces.tar --out preview.png
  retrato bench train --family dcgan --batch 64
  retrato invert --model celeba-64.safetensors --image me.jpg --out me.npy --preview me.png";

#[derive(Subcommand)]
enum Command {
    /// Write a model file with random (untrained) weights for any family.
    Init(init::Args),
    /// Draw portraits from a model file into a PNG grid (or separate files).
    Sample(sample::SampleArgs),
    /// Morph one portrait into another along the sphere of latent space (a PNG strip).
    Interpolate(sample::InterpolateArgs),
    /// Show what a model file holds: family, configuration, training, metrics, size.
    Info(info::Args),
    /// Write a model in another storage (f32, f16, int8), or a PyTorch netG as a retrato file.
    Convert(convert::Args),
    /// Average the generators of several models of one architecture (a model soup: runs
    /// continued from one parent often draw better averaged than apart).
    Average(average::Args),
    /// Train a model on a folder or archive of images (resumable, with logs and plots);
    /// with --from, fine-tune a trained model on new pictures.
    #[command(visible_alias = "finetune")]
    Train(train::Args),
    /// Look at a training set: decode it like training does and show the first images.
    #[command(subcommand)]
    Data(data::Command),
    /// Measure speed (training images per second).
    #[command(subcommand)]
    Bench(bench::Command),
    /// Measure quality: FID, KID, precision/recall, diversity, memorisation.
    #[command(subcommand)]
    Eval(eval::Command),
    /// Find a picture in a model's latent space: the latent whose portrait is closest to it
    /// (then `sample --latents` draws that person, in this model or one fine-tuned from it).
    Invert(invert::Args),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => init::run(args),
        Command::Sample(args) => sample::run_sample(args),
        Command::Interpolate(args) => sample::run_interpolate(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Average(args) => average::run(args),
        Command::Train(args) => train::run(args),
        Command::Data(command) => data::run(command),
        Command::Bench(command) => bench::run(command),
        Command::Eval(command) => eval::run(command),
        Command::Invert(args) => invert::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
