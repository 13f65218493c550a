//! `retrato eval` end to end on small sets: identical sets are at distance 0, features
//! written by `eval features` stand in for their images, bad inputs get one clear line.

use std::path::Path;
use std::process::{Command, Output};

use npyz::WriterBuilder;

fn retrato(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retrato"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
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
    let common = [
        "--n",
        "6",
        "--kid-subsets",
        "5",
        "--kid-subset-size",
        "4",
        "--json",
    ];

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
