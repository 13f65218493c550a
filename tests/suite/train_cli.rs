//! `retrato train` end to end on toy faces: the run's files, exact resume through the CLI,
//! checkpoints that survive kill -9, divergence handling, and `data preview`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use retrato::weights::ModelFile;

use crate::npy_f32;
use crate::toy::write_toy_folder;

fn retrato(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .env("RETRATO_CACHE", cache)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str], cache: &Path) -> String {
    let out = retrato(args, cache);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "retrato {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny 32x32 DCGAN: 48 toy faces, batches of 16, 3 steps an epoch.
const SMALL: [&str; 10] = [
    "--set",
    "model.image_size=32",
    "--set",
    "model.g_width=8",
    "--set",
    "model.d_width=8",
    "--set",
    "model.latent_dim=16",
    "--batch-size",
    "16",
];

fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--family", "dcgan", "--data", data, "--out", out];
    args.extend(SMALL);
    args.extend(extra);
    args
}

fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn setup() -> (tempfile::TempDir, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("faces");
    write_toy_folder(&data, 48, 32);
    let cache = dir.path().join("cache");
    (dir, s(&data), cache)
}

#[test]
fn a_run_writes_metrics_plot_samples_checkpoints_and_a_model() {
    let (dir, data, cache) = setup();
    let out = s(&dir.path().join("run"));
    let stdout = ok(&train_args(&data, &out, &["--epochs", "2"]), &cache);
    assert!(stdout.contains("48 images"), "{stdout}");
    assert!(stdout.contains("finished at step 6"), "{stdout}");
    let run = dir.path().join("run");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "step,epoch,d_loss,g_loss,d_real,d_fake,images_per_s,wall_s"
    );
    assert_eq!(lines.len(), 7, "one row per step");
    assert!(lines[6].starts_with("6,2,"));
    for file in [
        "loss.png",
        "samples/epoch_0001.png",
        "samples/epoch_0002.png",
        "config.toml",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let plot = image::open(run.join("loss.png")).unwrap();
    assert_eq!(plot.width(), 900);
    let model = ModelFile::from_path(&run.join("model.safetensors")).unwrap();
    assert_eq!(model.header.steps, 6);
    assert_eq!(model.header.storage, retrato::weights::Storage::F16);
    let grid = s(&dir.path().join("grid.png"));
    ok(
        &[
            "sample",
            "--model",
            &s(&run.join("model.safetensors")),
            "--n",
            "4",
            "--out",
            &grid,
        ],
        &cache,
    );
    // The data was decoded once: the second run reads the cache.
    let again = ok(
        &train_args(&data, &s(&dir.path().join("run2")), &["--epochs", "1"]),
        &cache,
    );
    assert!(again.contains("(decode cache)"), "{again}");
    // The same --out again without --resume would overwrite a run: refused.
    let refused = retrato(&train_args(&data, &out, &["--epochs", "1"]), &cache);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
}

#[test]
fn fid_during_training_is_logged_plotted_kept_at_its_best_and_put_in_the_card() {
    let (dir, data, cache) = setup();
    let reference = dir.path().join("held_out");
    write_toy_folder(&reference, 8, 32);
    let out = dir.path().join("run");
    let fid_reference = format!("run.fid_reference={}", s(&reference));
    let stdout = ok(
        &train_args(
            &data,
            &s(&out),
            &[
                "--epochs",
                "2",
                "--set",
                "run.fid_epochs=1",
                "--set",
                &fid_reference,
                "--set",
                "run.fid_images=8",
            ],
        ),
        &cache,
    );
    assert!(stdout.contains("real-vs-real floor"), "{stdout}");
    assert!(stdout.contains("step 3: FID"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "step,epoch,d_loss,g_loss,d_real,d_fake,fid,images_per_s,wall_s"
    );
    let fid_at = |line: &str| line.split(',').nth(6).unwrap().to_string();
    assert_eq!(fid_at(lines[1]), "", "no FID between evaluations");
    let measured: Vec<f64> = [lines[3], lines[6]]
        .iter()
        .map(|l| fid_at(l).parse().unwrap())
        .collect();
    assert!(measured.iter().all(|f| f.is_finite() && *f > 0.0), "{csv}");
    let best = ModelFile::from_path(&out.join("checkpoints/best-fid.safetensors")).unwrap();
    let best_fid = measured.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(
        best.header.steps,
        if measured[0] <= measured[1] { 3 } else { 6 }
    );
    let model = ModelFile::from_path(&out.join("model.safetensors")).unwrap();
    let evaluation = model
        .header
        .evaluation
        .expect("the card records the last FID");
    assert_eq!(
        (evaluation.n, evaluation.reference.as_str()),
        (8, "held_out")
    );
    assert!((evaluation.scores.fid - measured[1]).abs() < 1e-3 * measured[1]);
    assert!(evaluation.floor.is_some_and(|f| f.is_finite()));
    assert_eq!(model.header.metrics["fid"], evaluation.scores.fid);
    assert!(best_fid <= evaluation.scores.fid);
}

/// 2N steps in one go equal N steps, a stop, and a resume for N more: same weights, and
/// metrics.csv holds each step once.
#[test]
fn resume_through_the_cli_continues_the_same_run() {
    let (dir, data, cache) = setup();
    let extra = [
        "--epochs",
        "4",
        "--set",
        "train.flip=true",
        "--set",
        "train.ema_decay=0.9",
        "--set",
        "model.d_dropout=0.2",
        "--set",
        "train.augment=[\"translation\"]",
    ];
    let straight = s(&dir.path().join("straight"));
    ok(&train_args(&data, &straight, &extra), &cache);
    let split = s(&dir.path().join("split"));
    let mut first = extra.to_vec();
    first.extend(["--max-steps", "5"]);
    let stdout = ok(&train_args(&data, &split, &first), &cache);
    assert!(stdout.contains("reached --max-steps at step 5"), "{stdout}");
    let resumed = ok(
        &["train", "--resume", "--data", &data, "--out", &split],
        &cache,
    );
    assert!(resumed.contains("at step 5"), "{resumed}");
    assert!(resumed.contains("finished at step 12"), "{resumed}");

    let raw = |run: &str| {
        let npy = s(&dir.path().join(format!(
            "{}.npy",
            Path::new(run).file_name().unwrap().to_string_lossy()
        )));
        ok(
            &[
                "sample",
                "--model",
                &format!("{run}/model.safetensors"),
                "--n",
                "8",
                "--raw",
                &npy,
            ],
            &cache,
        );
        npy_f32(Path::new(&npy)).1
    };
    assert_eq!(raw(&straight), raw(&split));
    let csv = std::fs::read_to_string(format!("{split}/metrics.csv")).unwrap();
    let steps: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
}

/// Checkpoints written every step, the process killed with SIGKILL at an arbitrary moment:
/// every checkpoint on disk is whole, and the run resumes from the newest.
#[test]
fn checkpoints_survive_kill_9_and_the_run_resumes() {
    let (dir, data, cache) = setup();
    let out = dir.path().join("run");
    let out_s = s(&out);
    let mut args = train_args(
        &data,
        &out_s,
        &[
            "--epochs",
            "1000",
            "--set",
            "run.checkpoint_minutes=0.00001",
        ],
    );
    args.retain(|_| true);
    let mut child = Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(&args)
        .env("RETRATO_CACHE", &cache)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint_dir = out.join("checkpoints");
    let start = Instant::now();
    let count = || {
        std::fs::read_dir(&checkpoint_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("step-"))
                    .count()
            })
            .unwrap_or(0)
    };
    while count() < 3 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(137));
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let mut newest = 0;
    for entry in std::fs::read_dir(&checkpoint_dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("step-") {
            continue; // an interrupted write's temporary file, never a checkpoint
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let (trainer, _) =
            retrato::train::checkpoint::decode(&bytes, &burn::tensor::Device::flex().autodiff())
                .unwrap_or_else(|e| panic!("{name} is damaged: {e}"));
        newest = newest.max(trainer.step);
    }
    assert!(
        newest >= 2,
        "checkpoints were written (newest step {newest})"
    );
    let limit = (newest + 3).to_string();
    let resumed = ok(
        &[
            "train",
            "--resume",
            "--data",
            &data,
            "--out",
            &out_s,
            "--max-steps",
            &limit,
        ],
        &cache,
    );
    assert!(resumed.contains(&format!("at step {newest}")), "{resumed}");
    assert!(
        resumed.contains(&format!("reached --max-steps at step {limit}")),
        "{resumed}"
    );
}

#[test]
fn divergence_rolls_back_then_stops_with_a_clear_message() {
    let (dir, data, cache) = setup();
    let out = s(&dir.path().join("run"));
    let result = retrato(
        &train_args(
            &data,
            &out,
            &[
                "--epochs",
                "5",
                "--set",
                "train.lr_d=1e30",
                "--set",
                "train.lr_g=1e30",
            ],
        ),
        &cache,
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{stdout}");
    assert!(stdout.contains("diverged; rolled back to step"), "{stdout}");
    assert!(
        stderr.contains("diverged again after 3 rollbacks"),
        "{stderr}"
    );
    assert!(stderr.contains("last good checkpoint"), "{stderr}");
}

#[test]
fn bad_configs_and_data_are_reported_in_one_line() {
    let (dir, data, cache) = setup();
    let out = s(&dir.path().join("run"));
    let bad = retrato(
        &train_args(&data, &out, &["--set", "train.objective=vae"]),
        &cache,
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("invalid configuration"),
        "{stderr}"
    );
    let typo = retrato(
        &train_args(&data, &out, &["--set", "train.learning_rate=1"]),
        &cache,
    );
    assert!(String::from_utf8_lossy(&typo.stderr).contains("learning_rate"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let none = retrato(&train_args(&s(&empty), &out, &[]), &cache);
    assert!(String::from_utf8_lossy(&none.stderr).contains("no usable images"));
    for preset in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")).unwrap()
    {
        let preset = preset.unwrap().path();
        let text = std::fs::read_to_string(&preset).unwrap();
        let mut value: serde_json::Value = toml::from_str(&text).unwrap();
        if value.get("model").is_none() {
            // The fine-tuning recipe takes its model from the file it starts from.
            value["model"] = serde_json::json!({ "family": "dcgan" });
        }
        let config: retrato::train::TrainConfig =
            serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", preset.display()));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", preset.display()));
    }
}

#[test]
fn data_preview_shows_the_first_images() {
    let (dir, data, cache) = setup();
    let out = s(&dir.path().join("preview.png"));
    let stdout = ok(
        &[
            "data", "preview", "--data", &data, "--out", &out, "--n", "16", "--size", "32",
        ],
        &cache,
    );
    assert!(stdout.contains("48 images"), "{stdout}");
    let grid = image::open(&out).unwrap();
    assert_eq!((grid.width(), grid.height()), (4 * 34 + 2, 4 * 34 + 2));
}

/// Ctrl-C (SIGINT) stops cleanly: a checkpoint at the current step and a model file.
#[test]
fn ctrl_c_saves_a_checkpoint_and_the_model_before_exiting() {
    let (dir, data, cache) = setup();
    let out = dir.path().join("run");
    let out_s = s(&out);
    let child = Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(train_args(&data, &out_s, &["--epochs", "1000"]))
        .env("RETRATO_CACHE", &cache)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let rows = || {
        std::fs::read_to_string(out.join("metrics.csv"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    while rows() < 4 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let step: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("interrupted at step "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'interrupted at step' in {stdout}"));
    assert!(step >= 3);
    assert!(
        out.join(format!("checkpoints/step-{step:09}.safetensors"))
            .exists()
    );
    assert_eq!(
        ModelFile::from_path(&out.join("model.safetensors"))
            .unwrap()
            .header
            .steps,
        step
    );
}

/// `retrato finetune --from CHECKPOINT`: a new run at step 0 on the source's architecture with
/// the built-in few-shot recipe, its discriminator taken over, the card naming the source.
#[test]
fn finetune_starts_a_new_run_from_a_trained_model() {
    let (dir, data, cache) = setup();
    let source = dir.path().join("source");
    ok(&train_args(&data, &s(&source), &["--epochs", "1"]), &cache);
    let checkpoint = std::fs::read_dir(source.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap();
    let out = dir.path().join("tuned");
    let stdout = ok(
        &[
            "finetune",
            "--from",
            &s(&checkpoint),
            "--data",
            &data,
            "--out",
            &s(&out),
            "--batch-size",
            "16",
            "--max-steps",
            "2",
        ],
        &cache,
    );
    assert!(
        stdout.contains("with its trained discriminator"),
        "{stdout}"
    );
    assert!(stdout.contains("reached --max-steps at step 2"), "{stdout}");
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        config.contains("freeze_d = 2"),
        "the fine-tuning recipe: {config}"
    );
    assert!(
        config.contains("image_size = 32"),
        "the source's architecture: {config}"
    );
    let model = ModelFile::from_path(&out.join("model.safetensors")).unwrap();
    assert!(
        model.header.notes.starts_with("Fine-tuned from step-"),
        "{}",
        model.header.notes
    );

    // A file that is not a model: one line naming it, no run folder left behind.
    let bogus = dir.path().join("bogus.safetensors");
    std::fs::write(&bogus, b"not a model").unwrap();
    let refused = retrato(
        &[
            "finetune",
            "--from",
            &s(&bogus),
            "--data",
            &data,
            "--out",
            &s(&dir.path().join("x")),
        ],
        &cache,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("bogus.safetensors"), "{stderr}");
    assert!(!dir.path().join("x").exists());
}

/// Every run ends with a reduced checkpoint (OUT/resume.safetensors); `--resume FILE`
/// continues that run in a new folder (another machine) at its step, with its config, and
/// the folder then resumes like any other. A folder that holds a run refuses a file.
#[test]
fn a_reduced_checkpoint_continues_the_run_in_a_new_folder() {
    let (dir, data, cache) = setup();
    let first = s(&dir.path().join("first"));
    let extra = [
        "--epochs",
        "4",
        "--set",
        "train.ema_decay=0.9",
        "--max-steps",
        "4",
    ];
    let stdout = ok(&train_args(&data, &first, &extra), &cache);
    assert!(stdout.contains("reduced checkpoint"), "{stdout}");
    let reduced = format!("{first}/resume.safetensors");
    let full = std::fs::metadata(
        dir.path()
            .join("first/checkpoints/step-000000004.safetensors"),
    );
    assert!(std::fs::metadata(&reduced).unwrap().len() * 2 < full.unwrap().len());

    let second = s(&dir.path().join("second"));
    let args = [
        "train", "--resume", &reduced, "--data", &data, "--out", &second,
    ];
    let mut with_limit = args.to_vec();
    with_limit.extend(["--max-steps", "6"]);
    let resumed = ok(&with_limit, &cache);
    assert!(
        resumed.contains("at step 4 (retrato reduced training checkpoint"),
        "{resumed}"
    );
    assert!(
        resumed.contains("reached --max-steps at step 6 of 12"),
        "{resumed}"
    );
    let config = std::fs::read_to_string(dir.path().join("second/config.toml")).unwrap();
    assert!(config.contains("ema_decay = 0.9"), "{config}");
    // The new folder continues with a plain --resume ...
    let again = ok(
        &["train", "--resume", "--data", &data, "--out", &second],
        &cache,
    );
    assert!(
        again.contains("at step 6") && again.contains("finished at step 12"),
        "{again}"
    );
    // ... and will not take a file over the run it holds.
    let refused = retrato(&args, &cache);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds a run"));
}

/// A preset that measures FID against files this machine lacks trains anyway, saying why;
/// with the files there, `--max-minutes` says up front what it keeps for the final FID.
#[test]
fn fid_without_its_files_is_skipped_and_the_time_box_covers_the_final_fid() {
    let (dir, data, cache) = setup();
    let missing = format!("run.fid_reference={}", s(&dir.path().join("nowhere.npy")));
    let fid_on = ["--epochs", "1", "--set", "run.fid_epochs=1", "--set"];
    let (run_a, run_b) = (s(&dir.path().join("a")), s(&dir.path().join("b")));
    let mut args = train_args(&data, &run_a, &fid_on);
    args.push(&missing);
    let stdout = ok(&args, &cache);
    assert!(
        stdout.contains("note: no FID during this run: run.fid_reference"),
        "{stdout}"
    );
    assert!(stdout.contains("finished at step 3"), "{stdout}");

    let reference = dir.path().join("held_out");
    write_toy_folder(&reference, 8, 32);
    let present = format!("run.fid_reference={}", s(&reference));
    let mut args = train_args(&data, &run_b, &fid_on);
    args.extend([&present, "--set", "run.fid_images=8", "--max-minutes", "5"]);
    let stdout = ok(&args, &cache);
    assert!(stdout.contains("time box: training stops"), "{stdout}");
    assert!(stdout.contains("step 3: FID"), "{stdout}");
}

/// `--decay-minutes` needs `--max-minutes` and must fit inside it; said before any work.
#[test]
fn a_decay_window_outside_the_time_box_is_refused() {
    let (dir, data, cache) = setup();
    let out = s(&dir.path().join("run"));
    for (extra, reason) in [
        (vec!["--decay-minutes", "5"], "--max-minutes"),
        (
            vec!["--decay-minutes", "5", "--max-minutes", "5"],
            "below --max-minutes 5",
        ),
        (
            vec!["--decay-minutes", "0", "--max-minutes", "5"],
            "above 0",
        ),
    ] {
        let refused = retrato(&train_args(&data, &out, &extra), &cache);
        assert!(!refused.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(reason), "{extra:?}: {stderr}");
    }
    assert!(!dir.path().join("run").exists(), "nothing was started");
}
