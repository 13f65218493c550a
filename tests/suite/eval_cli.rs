//! `retrato eval` end to end on small sets: identical sets are at distance 0, features
//! written by `eval features` stand in for their images, bad inputs get one clear line.

use std::path::Path;
use std::process::{Command, Output};

use npyz::WriterBuilder;

fn retrato(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .env(
            "RETRATO_CACHE",
            std::env::temp_dir().join("retrato-test-cache"),
        )
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// Runs with its own feature/dataset cache, so tests see cache hits they caused themselves.
fn retrato_cached(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .env("RETRATO_CACHE", cache)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_u8_npy(path: &Path, shape: &[u64], values: &[u8]) {
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    writer.extend(values.iter().copied()).unwrap();
    writer.finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `eval fid` on 6 images with KID subsets that fit them, as JSON.
const SIX_IMAGES_JSON: [&str; 7] = [
    "--n",
    "6",
    "--kid-subsets",
    "5",
    "--kid-subset-size",
    "4",
    "--json",
];

fn json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn fid_of_a_set_with_itself_is_zero_and_features_stand_in_for_images() {
    let dir = tempfile::tempdir().unwrap();
    let faces: Vec<u8> = (0..6u64)
        .flat_map(|i| crate::toy::toy_face(16, i).into_raw())
        .collect();
    let others: Vec<u8> = (100..106u64)
        .flat_map(|i| crate::toy::toy_face(16, i).into_raw())
        .collect();
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    write_u8_npy(&a, &[6, 16, 16, 3], &faces);
    write_u8_npy(&b, &[6, 16, 16, 3], &others);
    let (a, b) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    );
    let common = SIX_IMAGES_JSON;

    let mut args = vec!["eval", "fid", "--real", &a, "--real", &a];
    args.extend(common);
    let same = json(&retrato(&args));
    assert!(same["fid"].as_f64().unwrap().abs() < 1e-3, "{same}");

    let mut args = vec!["eval", "fid", "--real", &a, "--real", &b];
    args.extend(common);
    let different = json(&retrato(&args));
    let fid = different["fid"].as_f64().unwrap();
    assert!(fid > 1.0, "{different}");

    let features = dir
        .path()
        .join("a_features.npy")
        .to_string_lossy()
        .into_owned();
    let out = retrato(&[
        "eval", "features", "--images", &a, "--n", "6", "--out", &features,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["eval", "fid", "--real", &features, "--real", &b];
    args.extend(common);
    let from_features = json(&retrato(&args));
    assert!((from_features["fid"].as_f64().unwrap() - fid).abs() < 1e-6 * fid.max(1.0));
}

#[test]
fn bad_eval_inputs_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.npy");
    write_u8_npy(&small, &[3, 8, 8, 3], &[0u8; 3 * 8 * 8 * 3]);
    let wrong = dir.path().join("wrong.npy");
    write_u8_npy(&wrong, &[4, 8, 3], &[0u8; 4 * 8 * 3]);
    let (small, wrong) = (small.to_string_lossy(), wrong.to_string_lossy());
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "eval", "fid", "--real", &small, "--real", &small, "--n", "5",
            ],
            "holds 3 images, 5 needed",
        ),
        (
            vec![
                "eval", "fid", "--real", &wrong, "--real", &small, "--n", "2",
            ],
            "expected uint8 N×S×S×3",
        ),
        (
            vec!["eval", "fid", "--real", &small, "--n", "2"],
            "give either --real A --real B",
        ),
        (
            vec![
                "eval",
                "fid",
                "--real",
                &small,
                "--real",
                &small,
                "--n",
                "2",
                "--inception",
                "missing.safetensors",
            ],
            "cannot read the FID Inception weights",
        ),
    ];
    for (args, words) in cases {
        let out = retrato(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// A temporary folder, its own cache folder, and a tiny random DCGAN model file in it.
fn tiny_model() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir
        .path()
        .join("g.safetensors")
        .to_string_lossy()
        .into_owned();
    text(&retrato(&[
        "init", "--family", "dcgan", "--width", "4", "--out", &model,
    ]));
    let cache = dir.path().join("cache");
    (dir, cache, model)
}

#[test]
fn a_model_is_scored_with_its_floor_recorded_in_its_card_and_real_features_cached() {
    let (dir, cache, model) = tiny_model();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (reference, train) = (p("ref.npy"), p("train.npy"));
    let faces = |first: u64| -> Vec<u8> {
        (first..first + 6)
            .flat_map(|i| crate::toy::toy_face(64, i).into_raw())
            .collect()
    };
    write_u8_npy(Path::new(&reference), &[6, 64, 64, 3], &faces(0));
    write_u8_npy(Path::new(&train), &[6, 64, 64, 3], &faces(50));
    let args = [
        "eval", "fid", "--model", &model, "--ref", &reference, "--floor", &train, "--record",
    ];
    let args = [&args[..], &SIX_IMAGES_JSON[..]].concat();
    let first = json(&retrato_cached(&cache, &args));
    assert_eq!(first["images_through_inception"], 18, "{first}");
    for key in ["fid", "kid", "kid_std", "precision", "recall", "floor"] {
        assert!(
            first[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {first}"
        );
    }
    let ratio = first["collapse"]["diversity_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0, "{first}");
    assert!(first["fid"].as_f64() > first["floor"].as_f64(), "{first}");

    // The reference and the floor set come from the cache; only the portraits are new.
    let second = json(&retrato_cached(&cache, &args));
    assert_eq!(second["images_through_inception"], 6, "{second}");
    assert!((second["fid"].as_f64().unwrap() - first["fid"].as_f64().unwrap()).abs() < 1e-9);

    let info = text(&retrato(&["info", &model]));
    assert!(info.contains("evaluated   FID"), "{info}");
    assert!(info.contains("against ref.npy"), "{info}");
    assert!(info.contains("metric      fid_floor"), "{info}");
    // The card was added without touching the weights: portraits are unchanged.
    text(&retrato(&[
        "sample",
        "--model",
        &model,
        "--n",
        "2",
        "--out",
        &p("after.png"),
    ]));
}

#[test]
fn nearest_finds_a_memorized_portrait_in_the_training_set() {
    let (dir, cache, model) = tiny_model();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (train, picture) = (p("train"), p("nn.png"));
    // A "training set" holding portraits 2 and 3 of seed 5: a model that copies.
    text(&retrato(&[
        "sample", "--model", &model, "--n", "2", "--first", "2", "--seed", "5", "--each", &train,
    ]));
    for i in 0..3 {
        let face = crate::toy::toy_face(64, i);
        face.save(dir.path().join("train").join(format!("toy{i}.png")))
            .unwrap();
    }
    let out = text(&retrato_cached(
        &cache,
        &[
            "eval",
            "nearest",
            "--model",
            &model,
            "--train",
            &train,
            "--candidates",
            "4",
            "--seed",
            "5",
            "--rows",
            "2",
            "--neighbours",
            "2",
            "--out",
            &picture,
        ],
    ));
    assert!(out.contains("against 5 training images"), "{out}");
    assert!(out.contains("nearest training image: min 0.00"), "{out}");
    let shown = out
        .lines()
        .find(|l| l.starts_with("closest portraits"))
        .unwrap();
    assert!(
        shown.contains(": 2 (0.00), 3 (0.00)") || shown.contains(": 3 (0.00), 2 (0.00)"),
        "{out}"
    );
    let image = image::open(&picture).unwrap();
    assert!(
        image.width() > image.height(),
        "rows of portrait + neighbours"
    );
}
