//! All Rust integration tests, in one binary so that burn is linked once, not once per file.

#[cfg(feature = "native")]
mod cli;
mod data;
mod data_parallel;
#[cfg(feature = "distributed")]
mod distributed;
#[cfg(feature = "native")]
mod eval_cli;
mod fid_math;
mod flex_kernels;
#[cfg(feature = "native")]
mod inception;
mod invert;
mod latent;
mod models;
#[cfg(feature = "native")]
mod pytorch_parity;
mod time_box;
mod toy;
#[cfg(feature = "native")]
mod train_cli;
mod training;
mod weights;

/// Largest absolute difference between two equally long float slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared arrays differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A float32 .npy file: (shape, values).
#[cfg(feature = "native")]
pub fn npy_f32(path: &std::path::Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    (npy.shape().to_vec(), npy.into_vec::<f32>().unwrap())
}
