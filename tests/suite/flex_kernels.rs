//! The kernels `patches/burn-flex` replaces, against direct f64 definitions:
//! - convolutions (forward, and the input, weight and bias gradients autodiff asks for) for
//!   conv2d and conv_transpose2d with strides, dilations, groups, asymmetric padding and
//!   batches that split into several chunks; a central-difference check ties the reference
//!   gradients to the forward pass;
//! - batch norm (inference, training forward with its statistics, and the gradients of x,
//!   gamma and beta, checked by central differences of the f64 definition), rank 2 to 4;
//! - leaky ReLU forward and gradient (the fused kernels of both forks), small and large enough
//!   for the multi-threaded paths;
//! - the vectorizable f32 `tanh` and the threaded unary and scalar ops.

use burn::tensor::module::{batch_norm, batch_norm_train, conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// A conv2d test: name, x shape, weight shape, stride, (begin, end) padding, dilation, groups.
type ConvCase = (
    &'static str,
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [(usize, usize); 2],
    [usize; 2],
    usize,
);
/// A conv_transpose2d test: name, x, weight, stride, padding, padding_out, dilation, groups.
type TransposeCase = (
    &'static str,
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    usize,
);

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

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
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
    let cases: &[ConvCase] = &[
        (
            "row stride 3, column stride 2, odd height, asymmetric padding",
            [2, 3, 13, 10],
            [4, 3, 3, 4],
            [3, 2],
            [(1, 2), (1, 0)],
            [1, 1],
            1,
        ),
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
            "column stride 3, dilated, odd width",
            [3, 5, 9, 13],
            [4, 5, 3, 3],
            [2, 3],
            [(1, 2), (2, 0)],
            [1, 2],
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
        (
            "768 output positions (input gradient from a transposed weight)",
            [3, 4, 32, 32],
            [5, 4, 4, 4],
            [2, 2],
            [(1, 1); 2],
            [1, 1],
            1,
        ),
        (
            "4,096 output positions, groups (weight gradient accumulated transposed)",
            [4, 6, 32, 32],
            [6, 2, 3, 3],
            [1, 1],
            [(1, 1); 2],
            [1, 1],
            3,
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
    let cases: &[TransposeCase] = &[
        (
            "row stride 3, column stride 2",
            [2, 5, 5, 7],
            [5, 4, 4, 3],
            [3, 2],
            [1, 1],
            [0, 1],
            [1, 1],
            1,
        ),
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
            "column stride 3, odd width",
            [2, 4, 5, 7],
            [4, 3, 3, 3],
            [1, 3],
            [1, 1],
            [0, 2],
            [1, 1],
            1,
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
        (
            "2,048 input positions (both GEMMs on transposed operands)",
            [2, 4, 32, 32],
            [4, 3, 4, 4],
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

/// Batch norm of `x` `[batch, channels, plane]` in f64: `(y, mean, biased variance)`.
fn batch_norm_reference(
    x: &[f64],
    [batch, channels, plane]: [usize; 3],
    gamma: &[f64],
    beta: &[f64],
    epsilon: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let at = |n: usize, c: usize, p: usize| (n * channels + c) * plane + p;
    let count = (batch * plane) as f64;
    let mut y = vec![0.0; x.len()];
    let (mut means, mut variances) = (vec![0.0; channels], vec![0.0; channels]);
    for c in 0..channels {
        let all = || (0..batch).flat_map(move |n| (0..plane).map(move |p| at(n, c, p)));
        let mean = all().map(|i| x[i]).sum::<f64>() / count;
        let variance = all().map(|i| (x[i] - mean).powi(2)).sum::<f64>() / count;
        for i in all() {
            y[i] = (x[i] - mean) / (variance + epsilon).sqrt() * gamma[c] + beta[c];
        }
        (means[c], variances[c]) = (mean, variance);
    }
    (y, means, variances)
}

/// Central difference of `f` at `values[i]`.
fn central_difference(values: &[f64], i: usize, f: impl Fn(&[f64]) -> f64) -> f64 {
    let h = 1e-4;
    let (mut up, mut down) = (values.to_vec(), values.to_vec());
    up[i] += h;
    down[i] -= h;
    (f(&up) - f(&down)) / (2.0 * h)
}

fn as_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

fn training_batch_norm_matches_the_definition<const D: usize>(shape: [usize; D]) {
    let device = Device::flex().autodiff();
    device.seed(11);
    let (batch, channels) = (shape[0], shape[1]);
    let plane = shape[2..].iter().product::<usize>();
    let dims = [batch, channels, plane];
    let epsilon = 1e-5;
    // An offset and scale per run, so the statistics are not those of N(0, 1).
    let x = (Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device) * 3.0 + 1.5)
        .require_grad();
    let gamma =
        Tensor::<1>::random([channels], Distribution::Uniform(0.5, 1.5), &device).require_grad();
    let beta =
        Tensor::<1>::random([channels], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let r = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let out = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), epsilon);
    let grads = (out.output.clone() * r.clone()).sum().backward();

    let flat = |t: Tensor<D>| as_f64(&t.into_data().try_to_vec::<f32>().unwrap());
    let vector = |t: Tensor<1>| as_f64(&t.into_data().try_to_vec::<f32>().unwrap());
    let (xv, rv) = (flat(x.clone().detach()), flat(r));
    let (gv, bv) = (
        vector(gamma.clone().detach()),
        vector(beta.clone().detach()),
    );
    let (y_ref, mean_ref, variance_ref) = batch_norm_reference(&xv, dims, &gv, &bv, epsilon);
    let what = format!("batch_norm_train {shape:?}");
    let close = |name: &str, ours: Vec<f64>, reference: &[f64]| {
        let ours: Vec<f32> = ours.iter().map(|&v| v as f32).collect();
        assert_close(&format!("{what}: {name}"), &ours, reference);
    };
    close("y", flat(out.output.detach()), &y_ref);
    close("mean", vector(out.mean), &mean_ref);
    close("variance", vector(out.variance), &variance_ref);

    let loss = |x: &[f64], g: &[f64], b: &[f64]| {
        let (y, _, _) = batch_norm_reference(x, dims, g, b, epsilon);
        y.iter().zip(&rv).map(|(y, r)| y * r).sum::<f64>()
    };
    let dx_ref: Vec<f64> = (0..xv.len())
        .map(|i| central_difference(&xv, i, |x| loss(x, &gv, &bv)))
        .collect();
    let dgamma_ref: Vec<f64> = (0..channels)
        .map(|i| central_difference(&gv, i, |g| loss(&xv, g, &bv)))
        .collect();
    let dbeta_ref: Vec<f64> = (0..channels)
        .map(|i| central_difference(&bv, i, |b| loss(&xv, &gv, b)))
        .collect();
    // Finite differences are good to ~1e-8 here; f32 to ~1e-6 of the largest gradient.
    let loose = |name: &str, ours: Vec<f64>, reference: &[f64]| {
        let scale = reference.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let worst = ours
            .iter()
            .zip(reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 1e-4 * scale,
            "{what}: {name} off by {worst} (scale {scale})"
        );
    };
    loose("dx", flat(x.grad(&grads).unwrap()), &dx_ref);
    loose("dgamma", vector(gamma.grad(&grads).unwrap()), &dgamma_ref);
    loose("dbeta", vector(beta.grad(&grads).unwrap()), &dbeta_ref);
}

#[test]
fn batch_norm_training_matches_the_definition() {
    training_batch_norm_matches_the_definition([4, 3, 5, 5]);
    training_batch_norm_matches_the_definition([1, 2, 13]);
    training_batch_norm_matches_the_definition([9, 5]);
}

#[test]
fn batch_norm_inference_uses_the_given_statistics() {
    let device = Device::flex();
    device.seed(12);
    let shape = [3, 4, 6, 2];
    let x = Tensor::<4>::random(shape, Distribution::Normal(2.0, 3.0), &device);
    let channel =
        |low: f64, high: f64| Tensor::<1>::random([4], Distribution::Uniform(low, high), &device);
    let (gamma, beta, mean, variance) = (
        channel(0.5, 1.5),
        channel(-1.0, 1.0),
        channel(-2.0, 2.0),
        channel(0.1, 4.0),
    );
    let vector = |t: &Tensor<1>| as_f64(&t.clone().into_data().try_to_vec::<f32>().unwrap());
    let (g, b, m, v) = (
        vector(&gamma),
        vector(&beta),
        vector(&mean),
        vector(&variance),
    );
    let xv = as_f64(&x.clone().into_data().try_to_vec::<f32>().unwrap());
    let y = batch_norm(x, gamma, beta, mean, variance, 1e-3);
    let plane = 12;
    let reference: Vec<f64> = xv
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = (i / plane) % 4;
            (x - m[c]) / (v[c] + 1e-3).sqrt() * g[c] + b[c]
        })
        .collect();
    assert_close("batch_norm", &values(y), &reference);
}

/// Leaky ReLU: one fused pass forward (`patches/burn-flex`) and one tracked op whose backward
/// is a single mask_where (`patches/burn-autodiff`). Checked against the definition for
/// small tensors and for 300k values (the threaded paths), two slopes, and through a chain
/// where the input is used again (the op must keep its input, not its output, for backward).
#[test]
fn leaky_relu_and_its_gradient_match_the_definition() {
    for (shape, slope) in [
        ([2, 3, 4, 5], 0.2),
        ([3, 4, 125, 200], 0.2),
        ([1, 1, 7, 9], 0.01),
    ] {
        leaky_relu_matches_the_definition(shape, slope);
    }
}

/// At exactly zero the output is zero and the slope is 1, as in burn's unfused definition
/// (`mask_where(x, x < 0, x * slope)`), which the patched burn-autodiff replaces.
#[test]
fn leaky_relu_at_zero_keeps_the_unfused_definition() {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_floats([[[[-2.0, -0.0, 0.0, 3.0]]]], &device).require_grad();
    let y = burn::tensor::activation::leaky_relu(x.clone(), 0.2);
    let grads = y.clone().sum().backward();
    assert_eq!(values(y.detach()), vec![-0.4, 0.0, 0.0, 3.0]);
    assert_eq!(values(x.grad(&grads).unwrap()), vec![0.2, 1.0, 1.0, 1.0]);
}

fn leaky_relu_matches_the_definition(shape: [usize; 4], slope: f64) {
    let device = Device::flex().autodiff();
    device.seed(13);
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
    let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    // loss = sum(r * leaky(leaky(x)) + x): x feeds two ops and leaky_relu feeds leaky_relu.
    let once = burn::tensor::activation::leaky_relu(x.clone(), slope);
    let twice = burn::tensor::activation::leaky_relu(once.clone(), slope);
    let grads = (twice * r.clone() + x.clone()).sum().backward();
    let (xv, rv) = (as_f64(&values(x.clone().detach())), as_f64(&values(r)));
    let leaky = |v: f64| if v < 0.0 { slope * v } else { v };
    let y_ref: Vec<f64> = xv.iter().map(|&v| leaky(v)).collect();
    let dx_ref: Vec<f64> = xv
        .iter()
        .zip(&rv)
        .map(|(&v, &r)| {
            if v < 0.0 {
                slope * slope * r + 1.0
            } else {
                r + 1.0
            }
        })
        .collect();
    let what = format!("leaky_relu {shape:?} slope {slope}");
    assert_close(&what, &values(once.detach()), &y_ref);
    assert_close(
        &format!("{what}: dx"),
        &values(x.grad(&grads).unwrap()),
        &dx_ref,
    );
}

/// `tanh` (a branch-free rational approximation in the fork) against f64's over [-12, 12]
/// and at the edges, and a unary op from libm (`exp`) on the threaded path for tensors
/// above 256K elements, both on contiguous and transposed tensors.
#[test]
fn tanh_and_threaded_unary_ops_match_the_definition() {
    let device = Device::flex();
    let n = 600_000;
    let grid: Vec<f32> = (0..n)
        .map(|i| -12.0 + 24.0 * i as f32 / (n - 1) as f32)
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(grid.clone(), [1000, 600]), &device);
    let reference: Vec<f64> = grid.iter().map(|&v| (v as f64).tanh()).collect();
    let worst = |ours: &[f32], reference: &[f64]| {
        ours.iter()
            .zip(reference)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0f64, f64::max)
    };
    let y: Vec<f32> = x.clone().tanh().into_data().try_to_vec::<f32>().unwrap();
    assert!(
        worst(&y, &reference) < 5e-7,
        "tanh: {}",
        worst(&y, &reference)
    );
    assert!(y.iter().all(|v| v.abs() <= 1.0), "tanh beyond ±1");
    // The transposed view goes through the allocating path, in storage order.
    let yt: Vec<f32> = x
        .clone()
        .transpose()
        .tanh()
        .transpose()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(yt, y, "tanh of a transposed tensor");

    let edges = [
        0.0f32,
        -0.0,
        1e-30,
        -3e-4,
        5e-4,
        7.9,
        -7.91,
        1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let e = Tensor::<1>::from_floats(edges, &device).tanh();
    let e: Vec<f32> = e.into_data().try_to_vec::<f32>().unwrap();
    for (&x, &y) in edges.iter().zip(&e) {
        let exact = (x as f64).tanh();
        assert!(
            (y as f64 - exact).abs() <= 5e-7 * exact.abs().max(1e-30) + 1e-38,
            "tanh({x}) = {y}, not {exact}"
        );
    }
    let nan: Vec<f32> = Tensor::<1>::from_floats([f32::NAN], &device)
        .tanh()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(nan[0].is_nan(), "tanh(NaN)");

    let small: Vec<f32> = grid.iter().map(|v| v / 4.0).collect();
    let x = Tensor::<2>::from_data(TensorData::new(small.clone(), [1000, 600]), &device);
    let y: Vec<f32> = x.exp().into_data().try_to_vec::<f32>().unwrap();
    let reference: Vec<f64> = small.iter().map(|&v| (v as f64).exp()).collect();
    let relative = y
        .iter()
        .zip(&reference)
        .map(|(&a, &b)| ((a as f64 - b) / b).abs())
        .fold(0.0f64, f64::max);
    assert!(relative < 3e-7, "exp: relative error {relative}");
}

/// The float ops with a scalar on the threaded path (tensors above 256K elements): in place
/// on a tensor nothing else holds, copied from a shared one or from a view that starts past
/// its storage's first element, and the strided fallback of a transposed view — each equal,
/// bit for bit, to the operation applied element by element.
#[test]
fn threaded_scalar_ops_match_the_definition() {
    let device = Device::flex();
    let (rows, cols) = (1000, 600);
    let grid: Vec<f32> = (0..rows * cols)
        .map(|i| (i % 977) as f32 * 0.37 - 150.0)
        .collect();
    let tensor = || Tensor::<2>::from_data(TensorData::new(grid.clone(), [rows, cols]), &device);
    let op = |v: f32| (v * 1.5 + 2.0) / 4.0 - 0.25;
    let expected: Vec<f32> = grid.iter().map(|&v| op(v)).collect();
    let apply = |t: Tensor<2>| (t * 1.5 + 2.0) / 4.0 - 0.25;

    assert_eq!(values(apply(tensor())), expected, "in place");
    let shared = tensor();
    let copied = apply(shared.clone());
    assert_eq!(values(copied), expected, "from a shared tensor");
    assert_eq!(values(shared), grid, "the shared tensor is left as it was");
    let offset = apply(tensor().slice([1..rows, 0..cols]));
    assert_eq!(values(offset), expected[cols..], "from an offset view");
    let strided = apply(tensor().transpose()).transpose();
    assert_eq!(values(strided), expected, "from a transposed view");
}
