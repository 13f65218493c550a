//! Batch normalization (inference, training forward and its backward) as a few passes over
//! the channel planes. (retrato patch, see `RETRATO.md` at the crate root.)
//!
//! burn's default builds these out of a dozen tensor operations, each a full pass over the
//! activations and some a transposing copy (`swap_dims(0, 1)`) to reach per-channel
//! reductions; in a DCGAN step that costs more than the convolutions around it. Here the
//! statistics are two reads of each channel (mean, then the centred second moment, in f64),
//! and the output or the input gradient is one parallel pass with per-channel constants.
//! Input `[batch, channels, ...]` of any rank ≥ 2; f32 and f64, f16 and bf16 through f32.

use alloc::vec::Vec;

use burn_backend::{DType, Element, TensorMetadata};
use burn_std::{Bytes, Shape, bf16, f16};
use bytemuck::Pod;

use crate::ops::module::{cast_from_f32, cast_to_f32};
use crate::ops::written::{self, Part};
use crate::{FlexTensor, Layout};

/// The float types the kernels run on (everything else is widened to f32).
trait NormFloat: Element + Pod + Copy + Default + Send + Sync {
    fn to_f64(self) -> f64;
    fn from_f64(value: f64) -> Self;
}

impl NormFloat for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(value: f64) -> Self {
        value as f32
    }
}

impl NormFloat for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(value: f64) -> Self {
        value
    }
}

/// `[batch, channels, plane]` view of the input shape.
#[derive(Clone, Copy)]
struct Planes {
    batch: usize,
    channels: usize,
    plane: usize,
}

impl Planes {
    fn of(shape: &Shape) -> Self {
        assert!(
            shape.num_dims() >= 2,
            "batch_norm: input needs a channel axis"
        );
        let (batch, channels) = (shape[0], shape[1]);
        let plane = shape.num_elements() / (batch * channels).max(1);
        Self {
            batch,
            channels,
            plane,
        }
    }
    /// Values per channel, the count the statistics average over.
    fn per_channel(&self) -> f64 {
        (self.batch * self.plane) as f64
    }
    fn channel_planes<'a, T>(&self, x: &'a [T], c: usize) -> impl Iterator<Item = &'a [T]> {
        let (channels, plane) = (self.channels, self.plane);
        (0..self.batch).map(move |n| &x[(n * channels + c) * plane..(n * channels + c + 1) * plane])
    }
}

/// `Σ f(v)` in f64 with eight independent accumulators (so the loop vectorizes).
fn sum_by<T: NormFloat>(values: &[T], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v.to_f64())).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v.to_f64());
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `Σ f(a, b)` over two equally long slices, like [`sum_by`].
fn sum_pairs_by<T: NormFloat>(a: &[T], b: &[T], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x.to_f64(), y.to_f64()))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += f(x[i].to_f64(), y[i].to_f64());
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `job(c)` for every channel, in parallel when rayon is on.
fn per_channel<R: Send>(channels: usize, job: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..channels).into_par_iter().map(job).collect()
    }
    #[cfg(not(feature = "rayon"))]
    (0..channels).map(job).collect()
}

/// The output whose plane `i` (channel `c`) `job(c, i, part)` appends to `part`, planes in
/// order, in parallel when rayon is on (each worker writes its planes once: no zeroed
/// output first).
fn map_planes<T: NormFloat>(
    dims: Planes,
    job: impl Fn(usize, usize, &mut Part<'_, T>) + Sync + Send,
) -> Vec<T> {
    let planes = dims.batch * dims.channels;
    if dims.plane == 0 || planes == 0 {
        return Vec::new();
    }
    // Parts of at least 16K elements, whole planes each.
    let per_part = ((1 << 14) / dims.plane + 1).min(planes);
    let sizes: Vec<usize> = (0..planes.div_ceil(per_part))
        .map(|k| ((k + 1) * per_part).min(planes) - k * per_part)
        .map(|count| count * dims.plane)
        .collect();
    let fill = |k: usize, part: &mut Part<'_, T>| {
        for i in k * per_part..((k + 1) * per_part).min(planes) {
            job(i % dims.channels, i, part);
        }
    };
    #[cfg(feature = "rayon")]
    return written::written_in_parts(&sizes, fill);
    #[cfg(not(feature = "rayon"))]
    written::written_in_order(&sizes, fill)
}

/// Per-channel mean and biased variance (two passes: the centred sum is exact enough in f64).
fn statistics<T: NormFloat>(x: &[T], dims: Planes) -> Vec<(f64, f64)> {
    per_channel(dims.channels, |c| {
        let count = dims.per_channel();
        let mean = dims
            .channel_planes(x, c)
            .map(|p| sum_by(p, |v| v))
            .sum::<f64>()
            / count;
        let variance = dims
            .channel_planes(x, c)
            .map(|p| sum_by(p, |v| (v - mean) * (v - mean)))
            .sum::<f64>()
            / count;
        (mean, variance)
    })
}

/// `y = (x - mean) / sqrt(variance + epsilon) * gamma + beta`, one fused pass.
fn normalize<T: NormFloat>(
    x: &[T],
    dims: Planes,
    gamma: &[T],
    beta: &[T],
    stats: &[(f64, f64)],
    epsilon: f64,
) -> Vec<T> {
    // y = x * scale + shift per channel.
    let affine: Vec<(f64, f64)> = stats
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(&(mean, variance), (&g, &b))| {
            let scale = g.to_f64() / (variance + epsilon).sqrt();
            (scale, b.to_f64() - mean * scale)
        })
        .collect();
    map_planes(dims, |c, i, part| {
        let (scale, shift) = affine[c];
        let src = &x[i * dims.plane..(i + 1) * dims.plane];
        part.push_mapped(src, |v| T::from_f64(v.to_f64() * scale + shift));
    })
}

/// Input, gamma and beta gradients of the training forward, given its statistics.
fn backward<T: NormFloat>(
    x: &[T],
    dims: Planes,
    gamma: &[T],
    stats: &[(f64, f64)],
    epsilon: f64,
    dy: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let count = dims.per_channel();
    // Per channel: Σ dy and Σ dy · x̂, with x̂ = (x - mean) · inv_std.
    let sums = per_channel(dims.channels, |c| {
        let (mean, variance) = stats[c];
        let inv_std = 1.0 / (variance + epsilon).sqrt();
        let mut sum_dy = 0.0;
        let mut sum_dy_xhat = 0.0;
        for (xp, dyp) in dims.channel_planes(x, c).zip(dims.channel_planes(dy, c)) {
            sum_dy += sum_by(dyp, |g| g);
            sum_dy_xhat += sum_pairs_by(xp, dyp, |v, g| g * (v - mean));
        }
        (sum_dy, sum_dy_xhat * inv_std)
    });
    // dx = gamma · inv_std · (dy - Σdy / M - x̂ · Σ(dy·x̂) / M) = a·dy - b·x + k per channel.
    let coefficients: Vec<(f64, f64, f64)> = (0..dims.channels)
        .map(|c| {
            let (mean, variance) = stats[c];
            let inv_std = 1.0 / (variance + epsilon).sqrt();
            let (sum_dy, sum_dy_xhat) = sums[c];
            let a = gamma[c].to_f64() * inv_std;
            let b = a * inv_std * sum_dy_xhat / count;
            (a, b, b * mean - a * sum_dy / count)
        })
        .collect();
    let x_grad = map_planes(dims, |c, i, part| {
        let (a, b, k) = coefficients[c];
        let range = i * dims.plane..(i + 1) * dims.plane;
        part.push_zipped(&x[range.clone()], &dy[range], |v, g| {
            T::from_f64(a * g.to_f64() - b * v.to_f64() + k)
        });
    });
    let gamma_grad = sums.iter().map(|&(_, s)| T::from_f64(s)).collect();
    let beta_grad = sums.iter().map(|&(s, _)| T::from_f64(s)).collect();
    (x_grad, gamma_grad, beta_grad)
}

fn tensor<T: NormFloat>(values: Vec<T>, shape: Shape, dtype: DType) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), dtype)
}

fn channel_vector(stats: &[(f64, f64)], pick: impl Fn(&(f64, f64)) -> f64) -> Vec<f64> {
    stats.iter().map(pick).collect()
}

/// Runs `job` on f32 or f64 storage; f16 and bf16 are widened to f32 and the results
/// narrowed back.
fn with_float_storage(
    tensors: Vec<FlexTensor>,
    job: impl Fn(&[FlexTensor]) -> Vec<FlexTensor>,
) -> Vec<FlexTensor> {
    let dtype = tensors[0].dtype();
    let contiguous: Vec<FlexTensor> = tensors.iter().map(|t| t.to_contiguous()).collect();
    match dtype {
        DType::F32 | DType::F64 => job(&contiguous),
        DType::F16 => {
            let wide: Vec<_> = contiguous
                .into_iter()
                .map(|t| cast_to_f32(t, f16::to_f32))
                .collect();
            job(&wide)
                .into_iter()
                .map(|t| cast_from_f32(t, f16::from_f32))
                .collect()
        }
        DType::BF16 => {
            let wide: Vec<_> = contiguous
                .into_iter()
                .map(|t| cast_to_f32(t, bf16::to_f32))
                .collect();
            job(&wide)
                .into_iter()
                .map(|t| cast_from_f32(t, bf16::from_f32))
                .collect()
        }
        other => panic!("batch_norm: unsupported dtype {other:?}"),
    }
}

/// Inference batch norm with given statistics: `[x, gamma, beta, mean, variance]` → `y`.
pub fn batch_norm(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let run = |t: &[FlexTensor]| {
        fn kernel<T: NormFloat>(t: &[FlexTensor], epsilon: f64) -> Vec<FlexTensor> {
            let dims = Planes::of(&t[0].shape());
            let stats: Vec<(f64, f64)> = t[3]
                .storage::<T>()
                .iter()
                .zip(t[4].storage::<T>())
                .map(|(&m, &v)| (m.to_f64(), v.to_f64()))
                .collect();
            let y = normalize(
                t[0].storage::<T>(),
                dims,
                t[1].storage(),
                t[2].storage(),
                &stats,
                epsilon,
            );
            alloc::vec![tensor(y, t[0].shape(), t[0].dtype())]
        }
        match t[0].dtype() {
            DType::F64 => kernel::<f64>(t, epsilon),
            _ => kernel::<f32>(t, epsilon),
        }
    };
    with_float_storage(alloc::vec![x, gamma, beta, mean, variance], run).remove(0)
}

/// Training batch norm: `(y, batch mean, biased batch variance)`.
pub fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> [FlexTensor; 3] {
    let run = |t: &[FlexTensor]| {
        fn kernel<T: NormFloat>(t: &[FlexTensor], epsilon: f64) -> Vec<FlexTensor> {
            let (shape, dtype) = (t[0].shape(), t[0].dtype());
            let dims = Planes::of(&shape);
            let x = t[0].storage::<T>();
            let stats = statistics(x, dims);
            let y = normalize(x, dims, t[1].storage(), t[2].storage(), &stats, epsilon);
            let channel = |pick: fn(&(f64, f64)) -> f64| {
                let values = channel_vector(&stats, pick)
                    .into_iter()
                    .map(T::from_f64)
                    .collect();
                tensor::<T>(values, Shape::new([dims.channels]), dtype)
            };
            alloc::vec![tensor(y, shape, dtype), channel(|s| s.0), channel(|s| s.1)]
        }
        match t[0].dtype() {
            DType::F64 => kernel::<f64>(t, epsilon),
            _ => kernel::<f32>(t, epsilon),
        }
    };
    let mut out = with_float_storage(alloc::vec![x, gamma, beta], run).into_iter();
    [
        out.next().unwrap(),
        out.next().unwrap(),
        out.next().unwrap(),
    ]
}

/// Gradients of [`batch_norm_train`]: `(x_grad, gamma_grad, beta_grad)`.
pub fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> [FlexTensor; 3] {
    let run = |t: &[FlexTensor]| {
        fn kernel<T: NormFloat>(t: &[FlexTensor], epsilon: f64) -> Vec<FlexTensor> {
            let (shape, dtype) = (t[0].shape(), t[0].dtype());
            let dims = Planes::of(&shape);
            let stats: Vec<(f64, f64)> = t[2]
                .storage::<T>()
                .iter()
                .zip(t[3].storage::<T>())
                .map(|(&m, &v)| (m.to_f64(), v.to_f64()))
                .collect();
            let (dx, dgamma, dbeta) = backward(
                t[0].storage::<T>(),
                dims,
                t[1].storage(),
                &stats,
                epsilon,
                t[4].storage(),
            );
            let channels = Shape::new([dims.channels]);
            alloc::vec![
                tensor(dx, shape, dtype),
                tensor(dgamma, channels.clone(), dtype),
                tensor(dbeta, channels, dtype)
            ]
        }
        match t[0].dtype() {
            DType::F64 => kernel::<f64>(t, epsilon),
            _ => kernel::<f32>(t, epsilon),
        }
    };
    let tensors = alloc::vec![x, gamma, mean, variance, output_grad];
    let mut out = with_float_storage(tensors, run).into_iter();
    [
        out.next().unwrap(),
        out.next().unwrap(),
        out.next().unwrap(),
    ]
}
