//! FID and KID on cases with known answers.

use nalgebra::{DMatrix, DVector};
use retrato::eval::neighbours::{collapse_check, nearest};
use retrato::eval::stats::{
    FeatureStats, frechet_distance, frechet_distance_of_features, kernel_inception_distance,
    precision_recall,
};
use retrato::latent::latents;

fn stats(mean: Vec<f64>, diagonal: Vec<f64>) -> FeatureStats {
    FeatureStats {
        count: 100,
        mean: DVector::from_vec(mean),
        covariance: DMatrix::from_diagonal(&DVector::from_vec(diagonal)),
    }
}

#[test]
fn identical_sets_are_at_distance_zero() {
    let features = latents(1, 0, 500, 16);
    let a = FeatureStats::of(&features, 16).unwrap();
    assert!(frechet_distance(&a, &a).abs() < 1e-8);
}

#[test]
fn gaussians_match_the_closed_form() {
    // Diagonal covariances: FID = |Δμ|² + Σ (a + b − 2√(ab)).
    let a = stats(vec![0.0, 1.0, 2.0], vec![1.0, 4.0, 0.25]);
    let b = stats(vec![1.0, 1.0, 0.0], vec![9.0, 1.0, 0.25]);
    let expected = (1.0 + 0.0 + 4.0) + (1.0 + 9.0 - 6.0) + (4.0 + 1.0 - 4.0) + 0.0;
    assert!((frechet_distance(&a, &b) - expected).abs() < 1e-9);
    assert!(
        (frechet_distance(&b, &a) - expected).abs() < 1e-9,
        "symmetric"
    );
    // A rotated (non-diagonal) covariance: the same distance from a rotated reference.
    let (c, s) = (0.6f64, 0.8f64);
    let r = DMatrix::from_row_slice(2, 2, &[c, -s, s, c]);
    let rotate = |m: &FeatureStats| FeatureStats {
        count: m.count,
        mean: &r * &m.mean,
        covariance: &r * &m.covariance * r.transpose(),
    };
    let a2 = stats(vec![0.0, 1.0], vec![2.0, 0.5]);
    let b2 = stats(vec![3.0, -1.0], vec![1.0, 3.0]);
    let direct = frechet_distance(&a2, &b2);
    assert!((frechet_distance(&rotate(&a2), &rotate(&b2)) - direct).abs() < 1e-9);
}

#[test]
fn sample_statistics_are_those_of_numpy() {
    let features = [1.0f32, 2.0, 3.0, 6.0, 5.0, 10.0];
    let s = FeatureStats::of(&features, 2).unwrap();
    assert_eq!(s.mean.as_slice(), &[3.0, 6.0]);
    // numpy.cov(rowvar=False): [[4, 8], [8, 16]] (divides by n − 1).
    assert_eq!(s.covariance.as_slice(), &[4.0, 8.0, 8.0, 16.0]);
    assert!(
        FeatureStats::of(&[1.0, 2.0], 2).is_err(),
        "one image has no covariance"
    );
}

#[test]
fn kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two() {
    let a = latents(1, 0, 400, 8);
    let b = latents(2, 0, 400, 8);
    let shifted: Vec<f32> = latents(3, 0, 400, 8).iter().map(|v| v + 0.5).collect();
    let (same, same_std) = kernel_inception_distance(&a, &b, 8, 50, 200, 0).unwrap();
    let (other, _) = kernel_inception_distance(&a, &shifted, 8, 50, 200, 0).unwrap();
    assert!(
        same.abs() < 3.0 * same_std.max(1e-4),
        "same distribution: {same} ± {same_std}"
    );
    assert!(
        other > 10.0 * same.abs().max(same_std),
        "shifted: {other} vs {same}"
    );
    assert!(kernel_inception_distance(&a[..8], &b, 8, 10, 100, 0).is_err());
}

#[test]
fn sample_space_fid_equals_the_covariance_form() {
    let a = latents(4, 0, 20, 32);
    let b: Vec<f32> = latents(5, 0, 30, 32)
        .iter()
        .map(|v| v * 1.5 + 0.2)
        .collect();
    let direct = frechet_distance(
        &FeatureStats::of(&a, 32).unwrap(),
        &FeatureStats::of(&b, 32).unwrap(),
    );
    let fast = frechet_distance_of_features(&a, &b, 32).unwrap();
    assert!((direct - fast).abs() < 1e-8 * direct, "{direct} vs {fast}");
    let fast_swapped = frechet_distance_of_features(&b, &a, 32).unwrap();
    assert!((direct - fast_swapped).abs() < 1e-8 * direct);
    assert!(frechet_distance_of_features(&a[..32], &b, 32).is_err());
}

#[test]
fn precision_and_recall_see_overlap_and_its_absence() {
    let a = latents(6, 0, 100, 8);
    let b = latents(7, 0, 100, 8);
    let far: Vec<f32> = latents(8, 0, 100, 8).iter().map(|v| v + 100.0).collect();
    let (p, r) = precision_recall(&a, &b, 8, 3).unwrap();
    assert!(p > 0.7 && r > 0.7, "same distribution: {p}, {r}");
    assert_eq!(precision_recall(&a, &far, 8, 3).unwrap(), (0.0, 0.0));
    assert_eq!(precision_recall(&a, &a, 8, 3).unwrap(), (1.0, 1.0));
}

#[test]
fn the_collapse_check_tells_a_varied_set_from_a_collapsed_one() {
    let real = latents(9, 0, 200, 8);
    let varied = latents(10, 0, 200, 8);
    // 200 samples from 4 modes, each a point with tiny noise: mode collapse.
    let collapsed: Vec<f32> = (0..200)
        .flat_map(|i| {
            let mode = &real[(i % 4) * 8..(i % 4 + 1) * 8];
            let noise = latents(11, i as u64, 1, 8);
            mode.iter()
                .zip(noise)
                .map(|(m, n)| m + 0.001 * n)
                .collect::<Vec<_>>()
        })
        .collect();
    let healthy = collapse_check(&real, &varied, 8).unwrap();
    assert!((healthy.diversity_ratio - 1.0).abs() < 0.1, "{healthy:?}");
    assert!(healthy.near_duplicate_share < 0.05, "{healthy:?}");
    let sick = collapse_check(&real, &collapsed, 8).unwrap();
    assert!(sick.diversity_ratio < 0.9, "{sick:?}");
    assert_eq!(sick.near_duplicate_share, 1.0, "{sick:?}");
    assert!(collapse_check(&real[..8], &varied, 8).is_err());
}

#[test]
fn nearest_finds_exact_copies_first_and_sorts_by_distance() {
    let pool = latents(12, 0, 50, 8);
    let query: Vec<f32> = [7usize, 31]
        .iter()
        .flat_map(|&i| pool[i * 8..(i + 1) * 8].to_vec())
        .collect();
    let found = nearest(&query, &pool, 8, 3);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0][0].0, found[1][0].0), (7, 31));
    assert!(found[0][0].1 < 1e-3);
    for row in &found {
        assert_eq!(row.len(), 3);
        assert!(row.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
