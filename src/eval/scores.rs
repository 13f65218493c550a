//! Every number `retrato eval fid` reports for one pair of feature sets, computed in one
//! place so the CLI, training runs and model cards agree.

use serde::{Deserialize, Serialize};

use super::neighbours::{CollapseCheck, check_collapse, collapse_from};
use super::stats::{
    check_precision_recall, frechet_distance_of_features, kernel_inception_distance,
    precision_recall_from, rows, squared_distances,
};

/// Settings of the measures that have any.
#[derive(Clone, Copy, Debug)]
pub struct ScoreOptions {
    /// Neighbours for precision/recall (Kynkäänniemi et al. 2019 use 3).
    pub k: usize,
    pub kid_subsets: usize,
    /// Capped at the smaller set's size.
    pub kid_subset_size: usize,
    /// Seeds KID's subset draws.
    pub seed: u64,
    /// The mode-collapse check costs one more pairwise-distance matrix per set.
    pub collapse: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self {
            k: 3,
            kid_subsets: 100,
            kid_subset_size: 1000,
            seed: 0,
            collapse: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub fid: f64,
    pub kid: f64,
    pub kid_std: f64,
    /// Share of generated images inside the real manifold.
    pub precision: f64,
    /// Share of real images inside the generated manifold.
    pub recall: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse: Option<CollapseCheck>,
}

/// Scores of `fake` (generated, or the first set) against `real` (the reference).
pub fn score(
    fake: &[f32],
    real: &[f32],
    dim: usize,
    options: ScoreOptions,
) -> Result<Scores, String> {
    let fid = frechet_distance_of_features(fake, real, dim)?;
    let (kid, kid_std) = kernel_inception_distance(
        fake,
        real,
        dim,
        options.kid_subsets,
        options.kid_subset_size,
        options.seed,
    )?;
    // Each pairwise-distance matrix once, shared by precision/recall and the collapse check.
    let (r, f) = (rows(real, dim), rows(fake, dim));
    check_precision_recall(r.nrows(), f.nrows(), options.k)?;
    let (rr, ff) = (squared_distances(&r, &r), squared_distances(&f, &f));
    let (precision, recall) =
        precision_recall_from(&rr, &ff, &squared_distances(&r, &f), options.k);
    let collapse = match options.collapse {
        true => {
            check_collapse(r.nrows(), f.nrows())?;
            Some(collapse_from(&rr, &ff))
        }
        false => None,
    };
    Ok(Scores {
        fid,
        kid,
        kid_std,
        precision,
        recall,
        collapse,
    })
}
