//! Data-parallel training under `mpirun -np 2` (feature `distributed`, OpenMPI over loopback):
//! two ranks with half the batch each take the same steps as one process with the whole
//! batch; a killed rank ends the job and leaves the last checkpoint whole; a batch that does
//! not split is refused.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use retrato::train::Trainer;
use retrato::train::checkpoint;
use retrato::train::params::{Values, read_values};
use retrato::train::trainer::Networks;

use crate::toy::write_toy_folder;

/// The largest difference allowed between the weights of 2 ranks and of 1 process after
/// [`STEPS`] steps: float sums in another order (measured: 3e-8 after 4 steps).
const TOLERANCE: f32 = 1e-6;
const STEPS: &str = "4";

/// A small MLP GAN: no batch norm (whose statistics are per rank) and no dropout, no
/// augmentation; everything else is the default recipe.
fn train_args(data: &Path, out: &Path, batch: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--family",
        "mlp",
        "--set",
        "model.image_size=16",
        "--set",
        "model.g_hidden=[32, 32]",
        "--set",
        "model.d_hidden=[32]",
        "--set",
        "model.latent_dim=8",
        "--set",
        "model.g_dropout=0.0",
        "--set",
        "model.d_dropout=0.0",
        "--set",
        "train.augment=[]",
        "--batch-size",
        batch,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--data".into(), data.display().to_string()]);
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn retrato(args: &[String], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .env("RETRATO_CACHE", cache)
        .output()
        .expect("the binary runs")
}

/// `mpirun -np 2 retrato ARGS` on loopback (root allowed: CI runs as root).
fn mpirun(args: &[String], cache: &Path) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .args([
            "--mca",
            "btl",
            "self,tcp",
            "--mca",
            "btl_tcp_if_include",
            "lo",
        ])
        .args(["--mca", "oob_tcp_if_include", "lo"])
        .args(["-x", "RETRATO_CACHE"])
        .arg(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .env("RETRATO_CACHE", cache);
    command
}

fn succeed(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed: {stdout}\n{stderr}");
    stdout
}

fn newest_checkpoint(run: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("step-")
        })
        .collect();
    found.sort();
    found.pop()
}

fn load(path: &Path) -> Trainer {
    let bytes = std::fs::read(path).unwrap();
    checkpoint::decode(&bytes, &Device::flex().autodiff())
        .unwrap()
        .0
}

/// Every weight of G and D, flattened in visiting order.
fn weights(trainer: &Trainer) -> Vec<f32> {
    let Networks::Gan {
        generator,
        discriminator,
        ..
    } = &trainer.networks
    else {
        panic!("a GAN")
    };
    let mut values = Values::default();
    generator.valid().inspect(&mut values);
    discriminator.valid().inspect(&mut values);
    pollster::block_on(read_values(values)).unwrap().concat()
}

#[test]
fn two_ranks_with_half_batches_take_the_steps_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cache) = (dir.path().join("faces"), dir.path().join("cache"));
    write_toy_folder(&data, 32, 16);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let steps = ["--max-steps", STEPS];
    succeed(
        retrato(&train_args(&data, &one, "8", &steps), &cache),
        "one process",
    );
    let stdout = succeed(
        mpirun(&train_args(&data, &two, "8", &steps), &cache)
            .output()
            .unwrap(),
        "mpirun -np 2",
    );
    assert!(
        stdout.contains("data-parallel over 2 ranks: 4 images of each batch per rank"),
        "{stdout}"
    );
    // Rank 0 alone speaks and writes.
    assert_eq!(
        stdout.matches("reached --max-steps at step 4").count(),
        1,
        "{stdout}"
    );

    let single = load(&one.join("checkpoints/step-000000004.safetensors"));
    let split = load(&two.join("checkpoints/step-000000004.safetensors"));
    assert_eq!(split.step, 4);
    let (a, b) = (weights(&single), weights(&split));
    let start = weights(&load(&one.join("checkpoints/step-000000000.safetensors")));
    let moved = crate::max_abs_diff(&a, &start);
    assert!(moved > 1e-4, "training moved the weights by only {moved}");
    let apart = crate::max_abs_diff(&a, &b);
    assert!(
        apart <= TOLERANCE,
        "2 ranks differ from 1 process by {apart}"
    );
}

fn rank_pid(mpirun_pid: u32, rank: usize) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{mpirun_pid}/task/{mpirun_pid}/children")).ok()?;
    children.split_whitespace().find_map(|pid| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        (environ.split(|b| *b == 0))
            .any(|entry| entry == wanted.as_bytes())
            .then(|| pid.parse().ok())?
    })
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_and_the_last_checkpoint_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cache) = (dir.path().join("faces"), dir.path().join("cache"));
    write_toy_folder(&data, 32, 16);
    let run = dir.path().join("run");
    // Checkpoints every ~0.6 s, and a run far too long to finish.
    let args = train_args(
        &data,
        &run,
        "8",
        &["--set", "run.checkpoint_minutes=0.01", "--epochs", "100000"],
    );
    let mut job = mpirun(&args, &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let first = run.join("checkpoints/step-000000000.safetensors");
    while newest_checkpoint(&run).is_none_or(|c| c == first) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after step 0"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rank1 = rank_pid(job.id(), 1).expect("rank 1 is a child of mpirun");
    Command::new("kill")
        .args(["-9", &rank1.to_string()])
        .status()
        .unwrap();
    let status = wait_with_timeout(&mut job, Duration::from_secs(60))
        .expect("the job ends when a rank dies");
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("rank 1"), "{stderr}");

    // The newest checkpoint is whole, and the job continues from it.
    let newest = newest_checkpoint(&run).unwrap();
    let step = load(&newest).step;
    assert!(step > 0);
    let limit = (step + 2).to_string();
    let resume = [
        "train",
        "--resume",
        "--data",
        &data.display().to_string(),
        "--out",
        &run.display().to_string(),
        "--max-steps",
        &limit,
    ]
    .map(String::from);
    let stdout = succeed(mpirun(&resume, &cache).output().unwrap(), "resume");
    assert!(stdout.contains(&format!("at step {step}")), "{stdout}");
    assert!(
        stdout.contains(&format!("reached --max-steps at step {limit}")),
        "{stdout}"
    );
}

#[test]
fn a_batch_that_does_not_split_into_the_ranks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cache) = (dir.path().join("faces"), dir.path().join("cache"));
    write_toy_folder(&data, 16, 16);
    let args = train_args(&data, &dir.path().join("run"), "7", &["--max-steps", "1"]);
    let output = mpirun(&args, &cache).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("batch_size 7 does not split into 2 equal shards"),
        "{stderr}"
    );
}
