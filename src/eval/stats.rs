//! Distances between two sets of Inception features: FID (Heusel et al. 2017) and KID
//! (Bińkowski et al. 2018), computed in f64 like the reference implementations.

use nalgebra::{DMatrix, DVector};

use crate::latent::SplitMix64;

/// Mean and covariance of a feature set (the covariance unbiased, as `numpy.cov`).
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureStats {
    pub count: usize,
    pub mean: DVector<f64>,
    pub covariance: DMatrix<f64>,
}

/// `n` feature rows of width `dim` as an n×dim f64 matrix.
pub(crate) fn rows(features: &[f32], dim: usize) -> DMatrix<f64> {
    let n = features.len() / dim;
    DMatrix::from_row_iterator(n, dim, features.iter().map(|&v| v as f64))
}

/// The rows minus their mean, and the mean.
fn centred(x: DMatrix<f64>) -> (DMatrix<f64>, DVector<f64>) {
    let mean = x.row_mean().transpose();
    let centred = DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] - mean[j]);
    (centred, mean)
}

impl FeatureStats {
    pub fn of(features: &[f32], dim: usize) -> Result<Self, String> {
        let n = features.len() / dim;
        if n < 2 {
            return Err(format!("need at least 2 images for statistics, got {n}"));
        }
        let (centred, mean) = centred(rows(features, dim));
        let covariance = centred.transpose() * &centred / (n as f64 - 1.0);
        Ok(Self {
            count: n,
            mean,
            covariance,
        })
    }
}

/// Symmetric positive semi-definite square root (eigenvalues below 0 from rounding → 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = m.clone().symmetric_eigen();
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

/// tr(M^½) of a symmetric positive semi-definite M: the sum of the roots of its eigenvalues
/// (those below 0 from rounding count as 0).
fn trace_sqrt_psd(m: DMatrix<f64>) -> f64 {
    m.symmetric_eigen()
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum()
}

/// ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½). tr((Σ₁Σ₂)^½) is taken as the trace of the square
/// root of the symmetric Σ₁^½ Σ₂ Σ₁^½, which has the same eigenvalues and no complex parts.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> f64 {
    let mean_term = (&a.mean - &b.mean).norm_squared();
    let root_a = sqrt_psd(&a.covariance);
    let middle = &root_a * &b.covariance * &root_a;
    let middle = (&middle + middle.transpose()) * 0.5;
    mean_term + a.covariance.trace() + b.covariance.trace() - 2.0 * trace_sqrt_psd(middle)
}

/// KID: the unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, averaged over
/// `subsets` random subsets of `subset_size` from each set; returns (mean, std).
pub fn kernel_inception_distance(
    a: &[f32],
    b: &[f32],
    dim: usize,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<(f64, f64), String> {
    let (xa, xb) = (rows(a, dim), rows(b, dim));
    let m = subset_size.min(xa.nrows()).min(xb.nrows());
    if m < 2 {
        return Err(format!("KID needs at least 2 images per set, got {m}"));
    }
    let kernel = |x: &DMatrix<f64>, y: &DMatrix<f64>| {
        (x * y.transpose()).map(|v| (v / dim as f64 + 1.0).powi(3))
    };
    // The full kernel matrices once; each subset then only sums entries.
    let (kaa, kbb, kab) = (kernel(&xa, &xa), kernel(&xb, &xb), kernel(&xa, &xb));
    let mut rng = SplitMix64::stream(seed, 0x4B1D);
    let mut pick = |n: usize| {
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        order.truncate(m);
        order
    };
    let within = |k: &DMatrix<f64>, idx: &[usize]| {
        let mut sum = 0.0;
        for &i in idx {
            for &j in idx {
                if i != j {
                    sum += k[(i, j)];
                }
            }
        }
        sum / (m * (m - 1)) as f64
    };
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets.max(1) {
        let (ia, ib) = (pick(xa.nrows()), pick(xb.nrows()));
        let mut cross = 0.0;
        for &i in &ia {
            for &j in &ib {
                cross += kab[(i, j)];
            }
        }
        values.push(within(&kaa, &ia) + within(&kbb, &ib) - 2.0 * cross / (m * m) as f64);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Ok((mean, var.sqrt()))
}

/// FID straight from two feature sets. With fewer images than feature dimensions (the usual
/// 2,000 against 2,048) the covariances are low-rank and the work moves to sample space:
/// with centred rows A and B, tr((Σ₁Σ₂)^½) is the sum of the singular values of
/// A Bᵀ / √((n₁−1)(n₂−1)) — one eigen-decomposition of an n×n matrix instead of two of d×d.
pub fn frechet_distance_of_features(a: &[f32], b: &[f32], dim: usize) -> Result<f64, String> {
    let (na, nb) = (a.len() / dim, b.len() / dim);
    if na < 2 || nb < 2 {
        return Err(format!(
            "need at least 2 images per set for FID, got {na} and {nb}"
        ));
    }
    if na.min(nb) >= dim {
        return Ok(frechet_distance(
            &FeatureStats::of(a, dim)?,
            &FeatureStats::of(b, dim)?,
        ));
    }
    let (ca, mean_a) = centred(rows(a, dim));
    let (cb, mean_b) = centred(rows(b, dim));
    let mean_term = (mean_a - mean_b).norm_squared();
    let (scale_a, scale_b) = (na as f64 - 1.0, nb as f64 - 1.0);
    let traces = ca.norm_squared() / scale_a + cb.norm_squared() / scale_b;
    let m = &ca * cb.transpose() / (scale_a * scale_b).sqrt();
    let gram = match na <= nb {
        true => &m * m.transpose(),
        false => m.transpose() * &m,
    };
    Ok(mean_term + traces - 2.0 * trace_sqrt_psd(gram))
}

/// Squared Euclidean distances between every row of `x` and every row of `y`.
pub(crate) fn squared_distances(x: &DMatrix<f64>, y: &DMatrix<f64>) -> DMatrix<f64> {
    let xx: Vec<f64> = x.row_iter().map(|r| r.norm_squared()).collect();
    let yy: Vec<f64> = y.row_iter().map(|r| r.norm_squared()).collect();
    let cross = x * y.transpose();
    DMatrix::from_fn(x.nrows(), y.nrows(), |i, j| {
        (xx[i] + yy[j] - 2.0 * cross[(i, j)]).max(0.0)
    })
}

/// Radius of each row's neighbourhood: the distance to its k-th nearest other row.
fn knn_radii(self_distances: &DMatrix<f64>, k: usize) -> Vec<f64> {
    (0..self_distances.nrows())
        .map(|i| {
            let mut row: Vec<f64> = self_distances.row(i).iter().copied().collect();
            row.sort_by(f64::total_cmp);
            // row[0] is the row itself (distance 0).
            row[k.min(row.len() - 1)]
        })
        .collect()
}

/// Improved precision and recall (Kynkäänniemi et al. 2019): precision is the share of
/// generated samples inside the real manifold (the union of k-NN balls around real
/// features), recall the share of real samples inside the generated manifold.
pub fn precision_recall(
    real: &[f32],
    fake: &[f32],
    dim: usize,
    k: usize,
) -> Result<(f64, f64), String> {
    let (r, f) = (rows(real, dim), rows(fake, dim));
    check_precision_recall(r.nrows(), f.nrows(), k)?;
    let (rr, ff) = (squared_distances(&r, &r), squared_distances(&f, &f));
    Ok(precision_recall_from(
        &rr,
        &ff,
        &squared_distances(&r, &f),
        k,
    ))
}

/// Precision/recall needs more than k images per set.
pub(crate) fn check_precision_recall(real: usize, fake: usize, k: usize) -> Result<(), String> {
    match real <= k || fake <= k {
        true => Err(format!(
            "precision/recall with k = {k} needs more than {k} images per set"
        )),
        false => Ok(()),
    }
}

/// [`precision_recall`] from squared distances already computed: real×real, fake×fake and
/// real×fake.
pub(crate) fn precision_recall_from(
    rr: &DMatrix<f64>,
    ff: &DMatrix<f64>,
    rf: &DMatrix<f64>,
    k: usize,
) -> (f64, f64) {
    let (nr, nf) = (rr.nrows(), ff.nrows());
    let (real_radii, fake_radii) = (knn_radii(rr, k), knn_radii(ff, k));
    let precision = (0..nf)
        .filter(|&j| (0..nr).any(|i| rf[(i, j)] <= real_radii[i]))
        .count() as f64
        / nf as f64;
    let recall = (0..nr)
        .filter(|&i| (0..nf).any(|j| rf[(i, j)] <= fake_radii[j]))
        .count() as f64
        / nr as f64;
    (precision, recall)
}
