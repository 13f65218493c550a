//! burn-flex's convolutions (forward, and the input, weight and bias gradients autodiff asks
//! for) against a direct f64 loop over the definition, for conv2d and conv_transpose2d with
//! strides, dilations, groups, asymmetric padding and batches that split into several
//! chunks. These guard the batched-GEMM kernels of `patches/burn-flex`; a central-difference
//! check ties the reference gradients to the forward pass.

use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// One convolution term: `out[o] += inp[i] * w[k]`, with flat indices into the tensors.
type Term = (usize, usize, usize);

/// Shapes and the list of multiply-adds that define one convolution.
struct Reference {
    x: [usize; 4],
    w: [usize; 4],
    y: [usize; 4],
    terms: Vec<Term>,
}

impl Reference {
    /// conv2d: x [b, ci, h, w], w [co, ci/g, kh, kw], padding (begin, end) per axis.
    fn conv(
        x: [usize; 4],
        w: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Self {
        let [b, ci, h, wd] = x;
        let [co, cpg, kh, kw] = w;
        let size = |i: usize, n: usize, k: usize| {
            (n + padding[i].0 + padding[i].1 - dilation[i] * (k - 1) - 1) / stride[i] + 1
        };
        let (oh, ow) = (size(0, h, kh), size(1, wd, kw));
        let opg = co / groups;
        let mut terms = Vec::new();
        for n in 0..b {
            for o in 0..co {
                let gi = o / opg;
                for c in 0..cpg {
                    let ic = gi * cpg + c;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            for oy in 0..oh {
                                for ox in 0..ow {
                                    let iy = (oy * stride[0] + ky * dilation[0]) as isize
                                        - padding[0].0 as isize;
                                    let ix = (ox * stride[1] + kx * dilation[1]) as isize
                                        - padding[1].0 as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let out = ((n * co + o) * oh + oy) * ow + ox;
                                    let inp = ((n * ci + ic) * h + iy as usize) * wd + ix as usize;
                                    let k = ((o * cpg + c) * kh + ky) * kw + kx;
                                    terms.push((out, inp, k));
                                }
                            }
                        }
                    }
                }
            }
        }
        Self {
            x,
            w,
            y: [b, co, oh, ow],
            terms,
        }
    }

    /// conv_transpose2d: x [b, ci, h, w], w [ci, co/g, kh, kw].
    fn transpose(
        x: [usize; 4],
        w: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        padding_out: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Self {
        let [b, ci, h, wd] = x;
        let [_, opg, kh, kw] = w;
        let co = opg * groups;
        let size = |i: usize, n: usize, k: usize| {
            (n - 1) * stride[i] + dilation[i] * (k - 1) + padding_out[i] + 1 - 2 * padding[i]
        };
        let (oh, ow) = (size(0, h, kh), size(1, wd, kw));
        let ipg = ci / groups;
        let mut terms = Vec::new();
        for n in 0..b {
            for c in 0..ci {
                let gi = c / ipg;
                for ol in 0..opg {
                    let o = gi * opg + ol;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            for iy in 0..h {
                                for ix in 0..wd {
                                    let oy = (iy * stride[0] + ky * dilation[0]) as isize
                                        - padding[0] as isize;
                                    let ox = (ix * stride[1] + kx * dilation[1]) as isize
                                        - padding[1] as isize;
                                    if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                        continue;
                                    }
                                    let out = ((n * co + o) * oh + oy as usize) * ow + ox as usize;
                                    let inp = ((n * ci + c) * h + iy) * wd + ix;
                                    let k = ((c * opg + ol) * kh + ky) * kw + kx;
                                    terms.push((out, inp, k));
                                }
                            }
                        }
                    }
                }
            }
        }
        Self {
            x,
            w,
            y: [b, co, oh, ow],
            terms,
        }
    }

    /// y, dL/dx, dL/dw for L = Σ y · r.
    fn run(&self, x: &[f32], w: &[f32], r: &[f32]) -> [Vec<f64>; 3] {
        let len = |s: [usize; 4]| s.iter().product::<usize>();
        let (mut y, mut dx, mut dw) = (
            vec![0.0; len(self.y)],
            vec![0.0; len(self.x)],
            vec![0.0; len(self.w)],
        );
        for &(o, i, k) in &self.terms {
            y[o] += x[i] as f64 * w[k] as f64;
            dx[i] += r[o] as f64 * w[k] as f64;
            dw[k] += r[o] as f64 * x[i] as f64;
        }
        [y, dx, dw]
    }
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn random(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Compares burn's result with the reference, relative to the reference's largest value.
fn assert_close(what: &str, ours: &[f32], reference: &[f64]) {
    assert_eq!(ours.len(), reference.len(), "{what}: length");
    let scale = reference.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(reference)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-5 * scale,
        "{what}: off by {worst} (scale {scale})"
    );
}

/// Runs forward + backward through burn and checks y, dx, dw and the bias gradient.
fn check(
    what: &str,
    reference: &Reference,
    forward: impl Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
) {
    let device = Device::flex().autodiff();
    device.seed(7);
    let x = random(reference.x, &device).require_grad();
    let w = random(reference.w, &device).require_grad();
    let channels = reference.y[1];
    let bias =
        Tensor::<1>::random([channels], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let r = random(reference.y, &device);
    let y = forward(x.clone(), w.clone(), bias.clone());
    assert_eq!(y.dims(), reference.y, "{what}: output shape");
    let grads = (y.clone() * r.clone()).sum().backward();

    let (xv, wv, rv) = (
        values(x.clone().detach()),
        values(w.clone().detach()),
        values(r.clone()),
    );
    let bv = bias
        .clone()
        .detach()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let [mut y_ref, dx_ref, dw_ref] = reference.run(&xv, &wv, &rv);
    let plane = reference.y[2] * reference.y[3];
    y_ref
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v += bv[(i / plane) % channels] as f64);
    let db_ref: Vec<f64> = (0..channels)
        .map(|c| {
            rv.iter()
                .enumerate()
                .filter(|(i, _)| (i / plane) % channels == c)
                .map(|(_, &v)| v as f64)
                .sum()
        })
        .collect();

    assert_close(&format!("{what}: y"), &values(y.detach()), &y_ref);
    assert_close(
        &format!("{what}: dx"),
        &values(x.grad(&grads).unwrap()),
        &dx_ref,
    );
    assert_close(
        &format!("{what}: dw"),
        &values(w.grad(&grads).unwrap()),
        &dw_ref,
    );
    let db = bias
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_close(&format!("{what}: db"), &db, &db_ref);
}

#[test]
fn conv2d_matches_the_definition() {
    let cases: &[(
        &str,
        [usize; 4],
        [usize; 4],
        [usize; 2],
        [(usize, usize); 2],
        [usize; 2],
        usize,
    )] = &[
        (
            "dcgan down block",
            [5, 6, 16, 16],
            [8, 6, 4, 4],
            [2, 2],
            [(1, 1); 2],
            [1, 1],
            1,
        ),
        (
            "dcgan head",
            [3, 8, 4, 4],
            [1, 8, 4, 4],
            [1, 1],
            [(0, 0); 2],
            [1, 1],
            1,
        ),
        (
            "one sample, 3x3 same",
            [1, 5, 9, 7],
            [6, 5, 3, 3],
            [1, 1],
            [(1, 1); 2],
            [1, 1],
            1,
        ),
        (
            "dilated, asymmetric padding",
            [2, 4, 11, 10],
            [6, 4, 3, 2],
            [2, 1],
            [(2, 0), (0, 1)],
            [2, 3],
            1,
        ),
        (
            "groups",
            [3, 6, 8, 8],
            [9, 2, 3, 3],
            [1, 2],
            [(1, 1); 2],
            [1, 1],
            3,
        ),
        (
            "depthwise",
            [2, 4, 7, 7],
            [4, 1, 3, 3],
            [1, 1],
            [(1, 1); 2],
            [1, 1],
            4,
        ),
        (
            "rgb stem",
            [4, 3, 12, 12],
            [10, 3, 4, 4],
            [2, 2],
            [(1, 1); 2],
            [1, 1],
            1,
        ),
        (
            "1x1",
            [2, 7, 5, 5],
            [3, 7, 1, 1],
            [1, 1],
            [(0, 0); 2],
            [1, 1],
            1,
        ),
        (
            "batch of 17 (chunks)",
            [17, 16, 8, 8],
            [24, 16, 4, 4],
            [2, 2],
            [(1, 1); 2],
            [1, 1],
            1,
        ),
    ];
    for &(what, x, w, stride, padding, dilation, groups) in cases {
        let reference = Reference::conv(x, w, stride, padding, dilation, groups);
        check(what, &reference, |x, w, b| {
            conv2d(
                x,
                w,
                Some(b),
                ConvOptions::new_with_padding(stride, padding, dilation, groups),
            )
        });
    }
}

#[test]
fn conv_transpose2d_matches_the_definition() {
    let cases: &[(
        &str,
        [usize; 4],
        [usize; 4],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        usize,
    )] = &[
        (
            "dcgan up block",
            [5, 8, 8, 8],
            [8, 6, 4, 4],
            [2, 2],
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        ),
        (
            "dcgan first block (1x1 -> 4x4)",
            [6, 10, 1, 1],
            [10, 8, 4, 4],
            [1, 1],
            [0, 0],
            [0, 0],
            [1, 1],
            1,
        ),
        (
            "to rgb",
            [3, 6, 16, 16],
            [6, 3, 4, 4],
            [2, 2],
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        ),
        (
            "padding out, dilation",
            [2, 4, 5, 6],
            [4, 3, 3, 3],
            [3, 2],
            [1, 2],
            [2, 1],
            [2, 1],
            1,
        ),
        (
            "groups",
            [2, 6, 5, 5],
            [6, 2, 3, 3],
            [2, 2],
            [1, 1],
            [1, 0],
            [1, 1],
            2,
        ),
        (
            "batch of 17 (chunks)",
            [17, 12, 4, 4],
            [12, 8, 4, 4],
            [2, 2],
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        ),
    ];
    for &(what, x, w, stride, padding, padding_out, dilation, groups) in cases {
        let reference = Reference::transpose(x, w, stride, padding, padding_out, dilation, groups);
        check(what, &reference, |x, w, b| {
            conv_transpose2d(
                x,
                w,
                Some(b),
                ConvTransposeOptions::new(stride, padding, padding_out, dilation, groups),
            )
        });
    }
}

/// The reference's gradients are the derivatives of its forward pass (central differences
/// on a few weights and inputs of a DCGAN-shaped layer, in f64).
#[test]
fn reference_gradients_match_finite_differences() {
    let device = Device::flex();
    let reference = Reference::conv([2, 3, 8, 8], [4, 3, 4, 4], [2, 2], [(1, 1); 2], [1, 1], 1);
    let (x, w, r) = (
        values(random(reference.x, &device)),
        values(random(reference.w, &device)),
        values(random(reference.y, &device)),
    );
    let loss = |x: &[f32], w: &[f32]| -> f64 {
        let [y, _, _] = reference.run(x, w, &r);
        y.iter().zip(&r).map(|(a, &b)| a * b as f64).sum()
    };
    let [_, dx, dw] = reference.run(&x, &w, &r);
    let h = 1e-2f32;
    for i in [0, 17, x.len() - 1] {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (loss(&up, &w) - loss(&down, &w)) / (2.0 * h as f64);
        assert!(
            (numeric - dx[i]).abs() < 1e-3 * dx[i].abs().max(1.0),
            "dx[{i}]: {numeric} vs {}",
            dx[i]
        );
    }
    for i in [0, 40, w.len() - 1] {
        let (mut up, mut down) = (w.clone(), w.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (loss(&x, &up) - loss(&x, &down)) / (2.0 * h as f64);
        assert!(
            (numeric - dw[i]).abs() < 1e-3 * dw[i].abs().max(1.0),
            "dw[{i}]: {numeric} vs {}",
            dw[i]
        );
    }
    // And the flex forward itself agrees with the reference on a plain tensor.
    let y = conv2d(
        Tensor::<4>::from_data(TensorData::new(x.clone(), reference.x), &device),
        Tensor::<4>::from_data(TensorData::new(w.clone(), reference.w), &device),
        None,
        ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
    );
    assert_close("plain forward", &values(y), &reference.run(&x, &w, &r)[0]);
}
