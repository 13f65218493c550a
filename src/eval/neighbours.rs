//! Nearest neighbours in Inception feature space: the memorization check (each portrait
//! beside its closest training images) and the mode-collapse check (are portraits as spread
//! out as real images, or crowded onto a few?).

use nalgebra::DMatrix;

use super::stats::{rows, squared_distances};

/// The `k` rows of `pool` nearest to each row of `query`, as (row, Euclidean distance),
/// nearest first.
pub fn nearest(query: &[f32], pool: &[f32], dim: usize, k: usize) -> Vec<Vec<(usize, f64)>> {
    let distances = squared_distances(&rows(query, dim), &rows(pool, dim));
    (0..distances.nrows())
        .map(|i| {
            let mut row: Vec<(usize, f64)> = distances
                .row(i)
                .iter()
                .enumerate()
                .map(|(j, &d)| (j, d.sqrt()))
                .collect();
            row.sort_by(|a, b| a.1.total_cmp(&b.1));
            row.truncate(k);
            row
        })
        .collect()
}

/// How spread out one set is: mean distance between two of its members, and each member's
/// distance to its nearest other member.
struct Spread {
    mean_distance: f64,
    nearest_other: Vec<f64>,
}

/// The spread of a set from its squared self-distances.
fn spread(squared: &DMatrix<f64>) -> Spread {
    let distances = squared.map(f64::sqrt);
    let n = distances.nrows();
    let mean_distance = distances.sum() / (n * (n - 1)) as f64;
    let nearest_other = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i)
                .map(|j| distances[(i, j)])
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    Spread {
        mean_distance,
        nearest_other,
    }
}

/// Mode-collapse check of generated features against real ones of the same count.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CollapseCheck {
    /// Mean pairwise feature distance, generated / real: near 1 is healthy, well below 1
    /// means the portraits crowd together.
    pub diversity_ratio: f64,
    pub mean_distance_fake: f64,
    pub mean_distance_real: f64,
    /// Share of portraits with a near-duplicate: another portrait closer than the closest
    /// 1 % of real images are to each other (the birthday-paradox test in feature space).
    /// About 0.01 for a set as varied as the real one.
    pub near_duplicate_share: f64,
    /// The distance below which two images count as near-duplicates.
    pub near_duplicate_distance: f64,
}

/// Share of real images that count as having a near-duplicate, by construction.
pub const NEAR_DUPLICATE_QUANTILE: f64 = 0.01;

pub fn collapse_check(real: &[f32], fake: &[f32], dim: usize) -> Result<CollapseCheck, String> {
    let (r, f) = (rows(real, dim), rows(fake, dim));
    check_collapse(r.nrows(), f.nrows())?;
    Ok(collapse_from(
        &squared_distances(&r, &r),
        &squared_distances(&f, &f),
    ))
}

/// The diversity check needs two images per set.
pub(crate) fn check_collapse(nr: usize, nf: usize) -> Result<(), String> {
    match nr < 2 || nf < 2 {
        true => Err(format!(
            "the diversity check needs at least 2 images per set, got {nr} and {nf}"
        )),
        false => Ok(()),
    }
}

/// [`collapse_check`] from squared self-distances already computed (real×real, fake×fake).
pub(crate) fn collapse_from(rr: &DMatrix<f64>, ff: &DMatrix<f64>) -> CollapseCheck {
    let nf = ff.nrows();
    let (real, fake) = (spread(rr), spread(ff));
    let mut sorted = real.nearest_other.clone();
    sorted.sort_by(f64::total_cmp);
    let threshold =
        sorted[((sorted.len() as f64 * NEAR_DUPLICATE_QUANTILE) as usize).min(sorted.len() - 1)];
    let duplicates = fake
        .nearest_other
        .iter()
        .filter(|&&d| d < threshold)
        .count();
    CollapseCheck {
        diversity_ratio: fake.mean_distance / real.mean_distance,
        mean_distance_fake: fake.mean_distance,
        mean_distance_real: real.mean_distance,
        near_duplicate_share: duplicates as f64 / nf as f64,
        near_duplicate_distance: threshold,
    }
}
