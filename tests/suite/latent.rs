//! Seeded latents: determinism, independence of indices, pinned values (so a change to the
//! sampler, which would change every shared portrait link, fails here first).

use retrato::latent::{latent, latents, slerp, variations, variations_of};

#[test]
fn same_seed_and_index_give_the_same_vector() {
    assert_eq!(latent(7, 3, 100), latent(7, 3, 100));
    assert_ne!(latent(7, 3, 100), latent(8, 3, 100));
    assert_ne!(latent(7, 3, 100), latent(7, 4, 100));
}

#[test]
fn a_portrait_does_not_depend_on_how_many_are_drawn() {
    let batch = latents(5, 0, 10, 64);
    assert_eq!(&batch[3 * 64..4 * 64], latent(5, 3, 64).as_slice());
    assert_eq!(latents(5, 3, 1, 64), latent(5, 3, 64));
}

#[test]
fn values_are_pinned() {
    let z = latent(0, 0, 4);
    let pinned = [PINNED_0, PINNED_1, PINNED_2, PINNED_3];
    for (value, expected) in z.iter().zip(pinned) {
        assert_eq!(value.to_bits(), expected, "{z:?}");
    }
}

// latent(0, 0, 4) = [-0.25068906, -2.0561502, 1.7985994, 0.7160179]
const PINNED_0: u32 = 0xbe80_5a51;
const PINNED_1: u32 = 0xc003_97f7;
const PINNED_2: u32 = 0x3fe6_3881;
const PINNED_3: u32 = 0x3f37_4cf3;

#[test]
fn values_are_standard_normal() {
    let z = latents(1, 0, 200, 100);
    let n = z.len() as f64;
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 0.02, "mean {mean}");
    assert!((var - 1.0).abs() < 0.03, "variance {var}");
    assert_eq!(latent(3, 0, 7).len(), 7, "odd sizes are trimmed");
}

#[test]
fn slerp_hits_both_ends_and_keeps_the_norm() {
    let (a, b) = (latent(1, 0, 128), latent(2, 0, 128));
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
    assert!(close(&slerp(&a, &b, 0.0), &a));
    assert!(close(&slerp(&a, &b, 1.0), &b));
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let middle = slerp(&a, &b, 0.5);
    let (na, nb, nm) = (norm(&a), norm(&b), norm(&middle));
    assert!(
        nm > 0.95 * na.min(nb),
        "slerp keeps the norm: {na} {nb} {nm}"
    );
}

/// A photo's latent varies like a seed's portrait: reproducibly, strength 0 is itself, and
/// each variation keeps a standard normal's norm.
#[test]
fn variations_of_any_latent_are_reproducible() {
    let z = latent(3, 9, 100);
    assert_eq!(variations_of(&z, 4, 0.3), variations_of(&z, 4, 0.3));
    assert_eq!(variations_of(&z, 2, 0.0), [z.clone(), z.clone()].concat());
    let mut other = z.clone();
    other[0] += 0.5;
    assert_ne!(variations_of(&z, 1, 0.3), variations_of(&other, 1, 0.3));
    // The seed's own variations are unchanged by the generalisation (pinned by share links).
    assert_eq!(variations(3, 9, 100, 2, 0.0), [z.clone(), z].concat());
    for v in variations_of(&latent(1, 1, 512), 3, 0.5).chunks(512) {
        let norm = (v.iter().map(|x| x * x).sum::<f32>() / 512.0).sqrt();
        assert!((norm - 1.0).abs() < 0.15, "norm {norm}");
    }
}
