//! The command line end to end: determinism of `sample`, PyTorch parity through `--latents`
//! and `--raw`, and one clear line (never a panic) for every bad model file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{max_abs_diff, npy_f32};

fn retrato(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = retrato(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "retrato {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn same_seed_same_png_other_seed_other_png() {
    let dir = tempfile::tempdir().unwrap();
    let model = path(dir.path(), "g.safetensors");
    ok(&["init", "--family", "dcgan", "--width", "8", "--out", &model]);
    let (a, b, c) = (
        path(dir.path(), "a.png"),
        path(dir.path(), "b.png"),
        path(dir.path(), "c.png"),
    );
    ok(&[
        "sample", "--model", &model, "--n", "16", "--seed", "1", "--out", &a,
    ]);
    ok(&[
        "sample", "--model", &model, "--n", "16", "--seed", "1", "--out", &b,
    ]);
    ok(&[
        "sample", "--model", &model, "--n", "16", "--seed", "2", "--out", &c,
    ]);
    let read = |p: &str| std::fs::read(p).unwrap();
    assert_eq!(read(&a), read(&b), "same seed, same bytes");
    assert_ne!(read(&a), read(&c), "other seed, other picture");
    let grid = image::open(&a).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        (4 * 66 + 2, 4 * 66 + 2),
        "4x4 grid of 64px tiles, 2px padding"
    );
}

#[test]
fn every_family_inits_samples_and_reports_info() {
    let dir = tempfile::tempdir().unwrap();
    for family in ["dcgan", "mlp", "vae"] {
        let model = path(dir.path(), &format!("{family}.safetensors"));
        ok(&[
            "init",
            "--family",
            family,
            "--out",
            &model,
            "--f16",
            "--with-discriminator",
            "--latent-dim",
            "16",
        ]);
        let info = ok(&["info", &model]);
        assert!(info.contains(&format!("family      {family}")), "{info}");
        assert!(info.contains("latent 16"), "{info}");
        let each = dir.path().join(format!("each-{family}"));
        ok(&[
            "sample",
            "--model",
            &model,
            "--n",
            "3",
            "--seed",
            "4",
            "--each",
            &each.to_string_lossy(),
        ]);
        assert!(each.join("portrait-4-0002.png").exists());
    }
}

#[test]
fn convert_to_int8_halves_the_file_and_the_portraits_stay_close() {
    let dir = tempfile::tempdir().unwrap();
    let (f16, int8) = (
        path(dir.path(), "g16.safetensors"),
        path(dir.path(), "g8.safetensors"),
    );
    ok(&["init", "--family", "dcgan", "--f16", "--out", &f16]);
    assert!(
        ok(&[
            "convert",
            "--model",
            &f16,
            "--storage",
            "int8",
            "--out",
            &int8
        ])
        .contains("Int8")
    );
    let size = |p: &str| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&int8) * 10 < size(&f16) * 6,
        "{} vs {}",
        size(&int8),
        size(&f16)
    );
    assert!(ok(&["info", &int8]).contains("Int8 storage"));
    let raw = |model: &str, name: &str| raw_portraits(dir.path(), model, name);
    let worst = max_abs_diff(&raw(&f16, "a.npy"), &raw(&int8, "b.npy"));
    assert!(worst < 0.1, "int8 drift {worst}");
    let refused = retrato(&[
        "convert",
        "--model",
        &path(dir.path(), "missing"),
        "--storage",
        "f16",
        "--out",
        &int8,
    ]);
    assert!(!refused.status.success());
}

/// `convert --part`: the page's two files from one with both networks — the generator to
/// sample from, and the discriminator alone (fetched only to fine-tune).
#[test]
fn convert_splits_generator_and_discriminator() {
    let dir = tempfile::tempdir().unwrap();
    let both = path(dir.path(), "both.safetensors");
    small_dcgan(&both);
    let names = |p: &str| -> Vec<String> {
        let file = retrato::weights::ModelFile::from_path(Path::new(p)).unwrap();
        file.tensor_names().map(str::to_string).collect()
    };
    let convert = |part: &str, out: &str| {
        retrato(&[
            "convert",
            "--model",
            &both,
            "--storage",
            "f16",
            "--part",
            part,
            "--out",
            out,
        ])
    };
    let (g, d) = (
        path(dir.path(), "g.safetensors"),
        path(dir.path(), "d.safetensors"),
    );
    assert!(convert("sampling", &g).status.success());
    assert!(convert("discriminator", &d).status.success());
    assert!(names(&g).iter().all(|n| n.starts_with("generator.")));
    assert!(names(&d).iter().all(|n| n.starts_with("discriminator.")));
    assert_eq!(names(&g).len() + names(&d).len(), names(&both).len());
    // `info` describes the discriminator-only file the page fine-tunes from.
    let info = ok(&["info", &d]);
    assert!(info.contains("generator   -"), "{info}");
    assert!(info.contains("discriminator "), "{info}");
    assert!(ok(&["info", &both]).contains("discriminator "));
    assert!(!ok(&["info", &g]).contains("discriminator "));
    // A file without a discriminator has none to give: one line saying so.
    let refused = retrato(&[
        "convert",
        "--model",
        &g,
        "--storage",
        "f16",
        "--part",
        "discriminator",
        "--out",
        &d,
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds no discriminator"));
}

/// `convert --g-width`: a wider generator that draws the same portraits, with the
/// discriminator beside it, which `train --from` continues; refused where it cannot work.
#[test]
fn convert_widens_a_generator_that_training_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (both, wide) = (
        path(dir.path(), "both.safetensors"),
        path(dir.path(), "wide.safetensors"),
    );
    small_dcgan(&both);
    let widen = |extra: &[&str]| {
        let mut args = vec![
            "convert",
            "--model",
            &both,
            "--storage",
            "f32",
            "--out",
            &wide,
        ];
        args.extend(extra);
        retrato(&args)
    };
    assert!(widen(&["--g-width", "12"]).status.success());
    let file = retrato::weights::ModelFile::from_path(Path::new(&wide)).unwrap();
    let retrato::model::ModelConfig::Dcgan(config) = &file.header.model else {
        panic!("not a DCGAN")
    };
    assert_eq!((config.g_width, config.d_width), (12, 8));
    assert!(file.has_part("discriminator."));
    let raw = |model: &str, name: &str| raw_portraits(dir.path(), model, name);
    let worst = max_abs_diff(&raw(&both, "a.npy"), &raw(&wide, "b.npy"));
    assert!(worst < 0.02, "widening moved the portraits by {worst}");
    // What it is for: a run that starts from the wider generator and its discriminator.
    let data = gradient_pictures(dir.path());
    let run = path(dir.path(), "run");
    let out = ok(&[
        "finetune",
        "--from",
        &wide,
        "--data",
        &data,
        "--out",
        &run,
        "--max-steps",
        "2",
        "--set",
        "train.batch_size=4",
    ]);
    assert!(out.contains("discriminator"), "{out}");
    let refused = widen(&["--g-width", "8"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("larger g_width"));
    let refused = widen(&["--g-width", "12", "--part", "sampling"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("leave out --part"));
    let mlp = path(dir.path(), "mlp.safetensors");
    ok(&["init", "--family", "mlp", "--out", &mlp]);
    let refused = retrato(&[
        "convert",
        "--model",
        &mlp,
        "--storage",
        "f32",
        "--g-width",
        "12",
        "--out",
        &wide,
    ]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DCGAN"));
}

/// A small DCGAN (32×32, width 8, latent 16) with its discriminator, written to `out`.
fn small_dcgan(out: &str) {
    ok(&[
        "init",
        "--family",
        "dcgan",
        "--with-discriminator",
        "--out",
        out,
        "--image-size",
        "32",
        "--width",
        "8",
        "--latent-dim",
        "16",
    ]);
}

/// The raw output of portraits 0..4 of seed 0 (`sample --raw`), through DIR/NAME.
fn raw_portraits(dir: &Path, model: &str, name: &str) -> Vec<f32> {
    let out = path(dir, name);
    ok(&["sample", "--model", model, "--n", "4", "--raw", &out]);
    npy_f32(Path::new(&out)).1
}

/// Eight 32×32 pictures (colour gradients) in DIR/faces, for runs of a step or two.
fn gradient_pictures(dir: &Path) -> String {
    let data = path(dir, "faces");
    std::fs::create_dir(&data).unwrap();
    for i in 0..8u8 {
        let image = image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([x as u8 * 8, y as u8 * 8, i * 30])
        });
        image.save(format!("{data}/{i}.png")).unwrap();
    }
    data
}

/// A training checkpoint holds G and its moving average: `sample` and `eval` draw the
/// average, the generator the run ships and measures (as `convert --part sampling` keeps).
#[test]
fn a_checkpoint_draws_from_its_moving_average() {
    let dir = tempfile::tempdir().unwrap();
    let model = path(dir.path(), "g.safetensors");
    small_dcgan(&model);
    let (data, run) = (gradient_pictures(dir.path()), path(dir.path(), "run"));
    ok(&[
        "finetune",
        "--from",
        &model,
        "--data",
        &data,
        "--out",
        &run,
        "--max-steps",
        "3",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.ema_decay=0.5",
    ]);
    let checkpoint = std::fs::read_dir(format!("{run}/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let checkpoint = checkpoint.to_str().unwrap();
    let average = path(dir.path(), "average.safetensors");
    ok(&[
        "convert",
        "--model",
        checkpoint,
        "--part",
        "sampling",
        "--storage",
        "f32",
        "--out",
        &average,
    ]);
    let raw = |model: &str, name: &str| raw_portraits(dir.path(), model, name);
    assert_eq!(raw(checkpoint, "a.npy"), raw(&average, "b.npy"));
    // `eval fid` measures the same portraits: the same score from either file.
    let fid = |model: &str| {
        let out = ok(&[
            "eval",
            "fid",
            "--model",
            model,
            "--ref",
            &data,
            "--size",
            "32",
            "--n",
            "8",
            "--kid-subset-size",
            "4",
            "--json",
        ]);
        let line = out.lines().last().unwrap();
        serde_json::from_str::<serde_json::Value>(line).unwrap()["fid"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(fid(checkpoint), fid(&average));
}

#[test]
fn dcgan_info_counts_pytorch_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let model = path(dir.path(), "g.safetensors");
    ok(&["init", "--family", "dcgan", "--out", &model]);
    assert!(ok(&["info", &model]).contains("3576704 parameters"));
}

#[test]
fn pytorch_latents_in_raw_output_out_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let raw = path(dir.path(), "raw.npy");
    let model = fixture("pytorch_netg_nz8_ngf4_64.safetensors");
    let latents = fixture("pytorch_netg_nz8_ngf4_64_z.npy");
    ok(&[
        "sample",
        "--model",
        &model,
        "--latents",
        &latents,
        "--raw",
        &raw,
    ]);
    let (_, expected) = npy_f32(Path::new(&fixture("pytorch_netg_nz8_ngf4_64_out.npy")));
    let (_, ours) = npy_f32(Path::new(&raw));
    let worst = max_abs_diff(&ours, &expected);
    assert!(worst <= 1e-4, "max abs diff {worst}");
}

#[test]
fn interpolate_writes_a_strip() {
    let dir = tempfile::tempdir().unwrap();
    let model = path(dir.path(), "g.safetensors");
    let strip = path(dir.path(), "strip.png");
    ok(&["init", "--family", "dcgan", "--width", "4", "--out", &model]);
    ok(&[
        "interpolate",
        "--model",
        &model,
        "--from",
        "3",
        "--to",
        "9",
        "--steps",
        "5",
        "--out",
        &strip,
    ]);
    let image = image::open(&strip).unwrap();
    assert_eq!((image.width(), image.height()), (5 * 66 + 2, 66 + 2));
}

/// Each bad file: exit code ≠ 0, one line on stderr naming the file, no panic.
#[test]
fn bad_model_files_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = path(dir.path(), "good.safetensors");
    ok(&["init", "--family", "dcgan", "--width", "4", "--out", &good]);
    let bytes = std::fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.safetensors", vec![], "empty"),
        (
            "truncated.safetensors",
            bytes[..bytes.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "picture.safetensors",
            b"\x89PNG\r\n\x1a\nnot a model".to_vec(),
            "not a safetensors",
        ),
    ];
    for (name, content, reason) in cases {
        let file: PathBuf = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let file = file.to_string_lossy().into_owned();
        for args in [
            vec!["sample", "--model", &file, "--out", "/dev/null"],
            vec!["info", &file],
        ] {
            let out = retrato(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name} accepted");
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.contains(&file) && stderr.contains(reason),
                "{name}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    let missing = path(dir.path(), "nowhere.safetensors");
    let out = retrato(&["info", &missing]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("nowhere.safetensors")
    );
}

#[test]
fn bad_latents_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("pytorch_netg_nz8_ngf4_64.safetensors");
    let wrong = fixture("pytorch_netg_nz6_ngf3_32_z.npy"); // nz 6, the model wants 8
    let out = retrato(&[
        "sample",
        "--model",
        &model,
        "--latents",
        &wrong,
        "--out",
        &path(dir.path(), "x.png"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("N×8"), "{stderr}");
}

/// `average`: a model averaged with itself draws the very same portraits; two models of
/// other seeds give a third generator; other architectures and a lone model are refused.
#[test]
fn average_of_generators_keeps_the_architecture_and_refuses_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let model = |name: &str, seed: &str, width: &str| {
        let out = path(dir.path(), name);
        init_dcgan_32(&out, width, seed);
        out
    };
    let (a, b, wide) = (
        model("a", "1", "8"),
        model("b", "2", "8"),
        model("w", "1", "16"),
    );
    let average = |models: &[&str], out: &str| {
        let mut args = vec!["average"];
        for m in models {
            args.extend(["--model", m]);
        }
        args.extend(["--storage", "f32", "--out", out]);
        retrato(&args)
    };
    let (same, mean) = (path(dir.path(), "same"), path(dir.path(), "mean"));
    assert!(average(&[&a, &a], &same).status.success());
    assert!(average(&[&a, &b], &mean).status.success());
    let raw = |model: &str, name: &str| raw_portraits(dir.path(), model, name);
    assert_eq!(raw(&a, "a.npy"), raw(&same, "same.npy"));
    let drawn = raw(&mean, "mean.npy");
    assert!(max_abs_diff(&drawn, &raw(&a, "a2.npy")) > 1e-3);
    assert!(max_abs_diff(&drawn, &raw(&b, "b.npy")) > 1e-3);
    assert!(ok(&["info", &mean]).contains("Mean of 2 generators"));

    let refused = average(&[&a, &wide], &path(dir.path(), "bad"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&wide) && stderr.contains("architecture"),
        "{stderr}"
    );
    assert!(!average(&[&a], &path(dir.path(), "lone")).status.success());
    assert!(!dir.path().join("bad").exists());
}

/// `--recalibrate N`: batch-norm statistics recomputed from the network's own activations on
/// the calibration batch, as `init` sets them (256 portraits): the same N gives the same
/// portraits back, another N statistics close to them; only the sampling generator takes it.
#[test]
fn recalibrated_batch_norm_statistics_are_the_calibration_batchs() {
    let dir = tempfile::tempdir().unwrap();
    let model = path(dir.path(), "g");
    init_dcgan_32(&model, "8", "0");
    let recalibrate = |portraits: &str, out: &str| {
        retrato(&[
            "convert",
            "--model",
            &model,
            "--part",
            "sampling",
            "--storage",
            "f32",
            "--recalibrate",
            portraits,
            "--out",
            out,
        ])
    };
    let (same, other, mean) = (
        path(dir.path(), "same"),
        path(dir.path(), "other"),
        path(dir.path(), "mean"),
    );
    assert!(recalibrate("256", &same).status.success());
    assert!(recalibrate("64", &other).status.success());
    ok(&[
        "average",
        "--model",
        &model,
        "--model",
        &model,
        "--recalibrate",
        "256",
        "--storage",
        "f32",
        "--out",
        &mean,
    ]);
    let raw = |model: &str, name: &str| raw_portraits(dir.path(), model, name);
    let drawn = raw(&model, "a.npy");
    assert!(max_abs_diff(&drawn, &raw(&same, "same.npy")) < 1e-5);
    assert!(max_abs_diff(&drawn, &raw(&mean, "mean.npy")) < 1e-5);
    let moved = max_abs_diff(&drawn, &raw(&other, "other.npy"));
    assert!(moved > 1e-6 && moved < 0.5, "{moved}");
    let refused = retrato(&[
        "convert",
        "--model",
        &model,
        "--storage",
        "f32",
        "--recalibrate",
        "64",
        "--out",
        &path(dir.path(), "all"),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--part sampling"));
    assert!(ok(&["info", &same]).contains("recomputed from 256 portraits"));
    for portraits in ["1", "100000"] {
        let refused = recalibrate(portraits, &path(dir.path(), "n"));
        assert!(
            !refused.status.success(),
            "--recalibrate {portraits} accepted"
        );
    }
}

/// A 32-pixel DCGAN generator of `width` with `seed`'s random weights (batch norm calibrated).
fn init_dcgan_32(out: &str, width: &str, seed: &str) {
    ok(&[
        "init",
        "--family",
        "dcgan",
        "--image-size",
        "32",
        "--width",
        width,
        "--seed",
        seed,
        "--out",
        out,
    ]);
}
