//! 2D convolution forward and backward as a few large GEMMs over groups of samples.
//!
//! (retrato patch, see `RETRATO.md` at the crate root.)
//!
//! The generic conv path runs one GEMM per sample and output tile, and burn's default
//! backward turns the weight gradient into a convolution whose kernel is the whole output
//! gradient (64 x 64 for a DCGAN layer) over a batch the size of the channel count: small,
//! badly shaped GEMMs and an im2col buffer the size of the batch times the output. Training
//! spends most of its time there. Here all three passes share one layout:
//!
//! - `col` is the im2col matrix of a chunk of samples, `[c_in/groups * kh * kw, samples * oh * ow]`,
//!   rows ordered like the weight's `[c_in/groups, kh, kw]` so the weight is used in place;
//! - forward:       `y_chunk = W · col`                        (then copied to NCHW)
//! - input grad:    `col = Wᵀ · dy_chunk`, scattered back by col2im (this is also the
//!   transposed convolution's forward pass)
//! - weight grad:   `dW += dy_chunk · colᵀ`, summed over chunks (also the transposed
//!   convolution's weight gradient, with the roles of input and output swapped).
//!
//! A chunk holds as many samples as fit about 1 MiB of `col`, and there are at least as many
//! chunks as threads; chunks run in parallel, each GEMM single-threaded (only when there are
//! fewer chunks than threads does the GEMM itself use the pool). Any stride, dilation,
//! groups and (asymmetric) padding.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::{Add, Range};

use burn_backend::ops::{ConvOptions, ConvTransposeOptions};
use burn_backend::{DType, TensorMetadata};
use burn_std::{Bytes, Shape, bf16, f16};

use crate::ops::matmul::GemmScalar;
use crate::ops::written::Part;
use crate::{FlexTensor, Layout};

/// Upper bound on one chunk's im2col matrix: about a core's L2 cache, so that the GEMM reads
/// what im2col wrote (or col2im reads what the GEMM wrote) while it is still there. A DCGAN
/// training step (batch 64, 2 threads, 1 MiB of L2 per core) ran 4–6 % faster with 0.5–2 MiB
/// than with 4 MiB, and 7–14 % faster than with 8–16 MiB; its GEMMs still have ≥ 256 columns.
const COL_BUDGET_BYTES: usize = 1 << 20;

/// Samples × output positions from which the input gradient reads a transposed copy of the
/// weight, and the weight gradient accumulates its transpose (see those functions): below
/// these, copying the weight costs about what the faster GEMMs save (measured on a DCGAN:
/// the 4x4 layers of 512 channels gain from the first, lose with the second).
const TRANSPOSED_INPUT_GRAD_MIN: usize = 512;
const TRANSPOSED_WEIGHT_GRAD_MIN: usize = 2048;

/// The sizes of one convolution as the forward conv sees them: input `[batch, c_in, h, w]`,
/// weight `[c_out, c_in / groups, kh, kw]`, output `[batch, c_out, oh, ow]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: [usize; 2],
    /// Padding before the first row and column (the end padding only shows in `oh`, `ow`).
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Conv2dGeometry {
    /// Geometry of `conv2d(x, weight, options)`.
    pub fn of_conv(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> Self {
        let out = |i: usize| {
            let (begin, end) = options.padding[i];
            let span = options.dilation[i] * (weight[2 + i] - 1) + 1;
            (x[2 + i] + begin + end - span) / options.stride[i] + 1
        };
        Self {
            batch: x[0],
            c_in: x[1],
            h: x[2],
            w: x[3],
            c_out: weight[0],
            kh: weight[2],
            kw: weight[3],
            oh: out(0),
            ow: out(1),
            stride: options.stride,
            pad: options.padding_begin(),
            dilation: options.dilation,
            groups: options.groups,
        }
    }

    /// Geometry of the convolution whose input gradient is `conv_transpose2d(x, weight,
    /// options)`: its output is the transposed conv's input `x`, its input the transposed
    /// conv's output. Weight `[c_in_t, c_out_t / groups, kh, kw]` is read as a conv weight
    /// `[conv c_out, conv c_in / groups, kh, kw]`.
    pub fn of_conv_transpose(x: &Shape, weight: &Shape, options: &ConvTransposeOptions<2>) -> Self {
        let size = |i: usize| {
            (x[2 + i] - 1) * options.stride[i]
                + options.dilation[i] * (weight[2 + i] - 1)
                + 1
                + options.padding_out[i]
                - 2 * options.padding[i]
        };
        Self {
            batch: x[0],
            c_in: weight[1] * options.groups,
            h: size(0),
            w: size(1),
            c_out: x[1],
            kh: weight[2],
            kw: weight[3],
            oh: x[2],
            ow: x[3],
            stride: options.stride,
            pad: options.padding,
            dilation: options.dilation,
            groups: options.groups,
        }
    }

    /// Whether the batched forward beats the generic path's special cases: those stay for
    /// grouped (depthwise), 1x1 and few-channel convolutions.
    pub fn suits_batched_forward(&self) -> bool {
        self.groups == 1 && self.kh * self.kw > 1 && !(self.c_in <= 4 && self.c_out <= 16)
    }

    fn in_per_group(&self) -> usize {
        self.c_in / self.groups
    }
    fn out_per_group(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the im2col matrix: one weight's reduction length.
    fn col_rows(&self) -> usize {
        self.in_per_group() * self.kh * self.kw
    }
    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    /// Splits the batch into chunks of whole samples (see the module docs).
    fn chunks<T>(&self) -> Vec<Range<usize>> {
        let per_sample = (self.col_rows() * self.out_plane() * core::mem::size_of::<T>()).max(1);
        let by_memory = (COL_BUDGET_BYTES / per_sample).max(1);
        let by_threads = self.batch.div_ceil(threads());
        let size = by_memory.min(by_threads).max(1);
        (0..self.batch.div_ceil(size))
            .map(|i| i * size..((i + 1) * size).min(self.batch))
            .collect()
    }
}

#[cfg(feature = "rayon")]
fn threads() -> usize {
    rayon::current_num_threads()
}
#[cfg(not(feature = "rayon"))]
fn threads() -> usize {
    1
}

/// GEMM threading for a chunk: the pool is already busy with chunks unless there are fewer
/// chunks than threads.
fn chunk_parallelism(chunks: usize) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if chunks < threads() {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = chunks;
    gemm::Parallelism::None
}

/// A chunk's working matrices: its im2col matrix and the GEMM's other operand or result.
/// Each worker keeps one set from chunk to chunk of a call, so they are allocated and
/// cleared once per worker instead of once per chunk (clearing them for every chunk was
/// ~5 % of a DCGAN training step).
struct Scratch<T> {
    col: Vec<T>,
    matrix: Vec<T>,
    /// The chunk's input in the phase-split layout of [`TapLayout::phased`].
    phased: Vec<T>,
    /// `Some(len)` while `col[..len]` is zero wherever im2col of that length does not write.
    col_clean_for: Option<usize>,
}

impl<T: GemmScalar> Scratch<T> {
    fn new() -> Self {
        Self {
            col: Vec::new(),
            matrix: Vec::new(),
            phased: Vec::new(),
            col_clean_for: None,
        }
    }

    /// `col` ready for [`im2col`] and `matrix`, of exactly these lengths. `col` is cleared
    /// only when its length changes: within a call the same length means the same samples
    /// per chunk, hence the same padding positions, which im2col never writes.
    fn for_im2col(&mut self, col: usize, matrix: usize) -> (&mut [T], &mut [T], &mut Vec<T>) {
        if self.col_clean_for != Some(col) {
            self.col.clear();
            self.col.resize(col, T::zero());
            self.col_clean_for = Some(col);
        }
        self.parts(col, matrix)
    }

    /// `col` and `matrix` of exactly these lengths, holding anything: for callers that
    /// write every element before reading it.
    fn overwritten(&mut self, col: usize, matrix: usize) -> (&mut [T], &mut [T], &mut Vec<T>) {
        self.col_clean_for = None;
        self.parts(col, matrix)
    }

    fn parts(&mut self, col: usize, matrix: usize) -> (&mut [T], &mut [T], &mut Vec<T>) {
        (
            Self::fit(&mut self.col, col),
            Self::fit(&mut self.matrix, matrix),
            &mut self.phased,
        )
    }

    fn grow(buffer: &mut Vec<T>, len: usize) {
        if buffer.len() < len {
            buffer.resize(len, T::zero());
        }
    }

    /// `buffer` grown to at least `len`, its first `len` elements (holding anything).
    fn fit(buffer: &mut Vec<T>, len: usize) -> &mut [T] {
        Self::grow(buffer, len);
        &mut buffer[..len]
    }
}

/// The pass's output, made of one part per chunk: chunk `i` writes its samples (`ranges[i]`,
/// `per_sample` elements each) with `job(scratch, i, part)`, in parallel when rayon is on.
fn for_each_chunk<T: GemmScalar + Default + Send + Sync>(
    ranges: &[Range<usize>],
    per_sample: usize,
    job: impl Fn(&mut Scratch<T>, usize, &mut Part<'_, T>) + Sync + Send,
) -> Vec<T> {
    let sizes: Vec<usize> = ranges.iter().map(|r| r.len() * per_sample).collect();
    #[cfg(feature = "rayon")]
    {
        use std::sync::Mutex;
        // One scratch per worker, found by the worker's index (a rayon `for_each_init` sets
        // one up per split, which here was most chunks). A worker that steals another chunk
        // while its own is in a GEMM finds its scratch taken and uses a fresh one.
        let scratches: Vec<Mutex<Scratch<T>>> =
            (0..=threads()).map(|_| Mutex::new(Scratch::new())).collect();
        super::written::written_in_parts(&sizes, |i, part| {
            let slot = rayon::current_thread_index().unwrap_or(threads()).min(threads());
            match scratches[slot].try_lock() {
                Ok(mut scratch) => job(&mut scratch, i, part),
                Err(_) => job(&mut Scratch::new(), i, part),
            }
        })
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut scratch = Scratch::new();
        super::written::written_in_order(&sizes, |i, part| job(&mut scratch, i, part))
    }
}

/// Sums `job(scratch, chunk index, accumulator)` over all chunks: one accumulator per contiguous
/// group of chunks (as many groups as threads), the groups' sums added in order. Unlike a
/// rayon `fold`, whose split depends on work stealing, the order of every addition is fixed,
/// so a step gives the same bits on every run (exact training resume depends on it).
fn sum_over_chunks<T: GemmScalar + Add<Output = T> + Send + Sync>(
    chunks: usize,
    len: usize,
    job: impl Fn(&mut Scratch<T>, usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    let add = |mut a: Vec<T>, b: Vec<T>| {
        a.iter_mut().zip(&b).for_each(|(a, &b)| *a = *a + b);
        a
    };
    let group_sum = |group: std::ops::Range<usize>| {
        let mut acc = vec![T::zero(); len];
        let mut scratch = Scratch::new();
        group.for_each(|i| job(&mut scratch, i, &mut acc));
        acc
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        let groups = rayon::current_num_threads().clamp(1, chunks.max(1));
        let per_group = chunks.div_ceil(groups);
        let sums: Vec<Vec<T>> = (0..groups)
            .into_par_iter()
            .map(|g| group_sum(g * per_group..((g + 1) * per_group).min(chunks)))
            .collect();
        sums.into_iter()
            .reduce(add)
            .unwrap_or_else(|| vec![T::zero(); len])
    }
    #[cfg(not(feature = "rayon"))]
    {
        let _ = add;
        group_sum(0..chunks)
    }
}

/// `dst = (accumulate ? dst : 0) + lhs · rhs`, every matrix given by its row and column
/// strides in elements.
#[allow(clippy::too_many_arguments)]
fn gemm_strided<T: GemmScalar>(
    [m, n, k]: [usize; 3],
    dst: &mut [T],
    [dst_rs, dst_cs]: [usize; 2],
    accumulate: bool,
    lhs: &[T],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[T],
    [rhs_rs, rhs_cs]: [usize; 2],
    parallelism: gemm::Parallelism,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    assert!(
        dst.len() >= last(m, n, dst_rs, dst_cs),
        "gemm: dst too short"
    );
    assert!(
        lhs.len() >= last(m, k, lhs_rs, lhs_cs),
        "gemm: lhs too short"
    );
    assert!(
        rhs.len() >= last(k, n, rhs_rs, rhs_cs),
        "gemm: rhs too short"
    );
    // SAFETY: the asserts above keep every strided access inside the slices, and dst is
    // borrowed mutably so it cannot alias lhs or rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// For kernel offset `k` along one axis: the output positions `o` whose input `o * stride +
/// k * dilation - pad` lies in `[0, size)`, as a half-open range.
fn valid_outputs(
    k: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    size: usize,
    outputs: usize,
) -> Range<usize> {
    let offset = (k * dilation) as isize - pad as isize;
    // o >= ceil(-offset / stride) and o * stride + offset <= size - 1.
    let lo = if offset >= 0 {
        0
    } else {
        ((-offset) as usize).div_ceil(stride)
    };
    let top = size as isize - 1 - offset;
    let hi = if top < 0 {
        0
    } else {
        (top as usize / stride + 1).min(outputs)
    };
    lo.min(hi)..hi
}

/// Visits every im2col row (one input channel of the group and one kernel offset) with the
/// channel's index in the group, the kernel offset `[ky, kx]` and the output rows and
/// columns whose taps land inside the input (the others read padding).
fn for_each_kernel_tap(
    g: &Conv2dGeometry,
    mut visit: impl FnMut(usize, usize, [usize; 2], Range<usize>, Range<usize>),
) {
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    for ci in 0..g.in_per_group() {
        for ky in 0..g.kh {
            let rows = valid_outputs(ky, sh, dh, ph, g.h, g.oh);
            for kx in 0..g.kw {
                let cols = valid_outputs(kx, sw, dw, pw, g.w, g.ow);
                let row = (ci * g.kh + ky) * g.kw + kx;
                visit(row, ci, [ky, kx], rows.clone(), cols);
            }
        }
    }
}

/// Where a chunk's input taps of one group are read (im2col) or added (col2im) so that
/// consecutive output columns are consecutive elements. With stride 1 that is the NCHW
/// tensor itself. With a column stride `sw > 1` it is a copy split by phase: each channel
/// becomes `sh * sw` planes, plane `(py, px)` holding the rows `py, py + sh, ...` and in them
/// the columns `px, px + sw, ...`, so each tap is a contiguous copy or add instead of every
/// `sw`-th element (the strided loops were ~13 % of a DCGAN training step), and a tap whose
/// output columns span whole plane rows is one run over all its output rows (a 4x4, stride 2,
/// padding 1 kernel has 8 such taps of 16; the short runs of small layers were ~10 %).
#[derive(Clone, Copy)]
struct TapLayout {
    sample: usize,
    channel: usize,
    phase: usize,
    row: usize,
    start: usize,
    sh: usize,
    sw: usize,
}

impl TapLayout {
    /// The NCHW tensor itself, from the chunk's first sample (`samples_start`, 0 when the
    /// slice already starts there).
    fn direct(g: &Conv2dGeometry, samples_start: usize, group: usize) -> Self {
        Self {
            sample: g.c_in * g.in_plane(),
            channel: g.in_plane(),
            phase: 0,
            row: g.w,
            start: (samples_start * g.c_in + group * g.in_per_group()) * g.in_plane(),
            sh: 1,
            sw: 1,
        }
    }

    /// A phase-split copy `[samples, in_per_group, sh, sw, ceil(h / sh), ceil(w / sw)]`.
    fn phased(g: &Conv2dGeometry) -> Self {
        let [sh, sw] = g.stride;
        let (rows, half) = (g.h.div_ceil(sh), g.w.div_ceil(sw));
        Self {
            sample: g.in_per_group() * sh * sw * rows * half,
            channel: sh * sw * rows * half,
            phase: rows * half,
            row: half,
            start: 0,
            sh,
            sw,
        }
    }

    fn len(&self, samples: usize) -> usize {
        samples * self.sample
    }

    /// Index of input element `(iy, ix)` of channel `ci` (in the group) of chunk sample `s`.
    fn at(&self, s: usize, ci: usize, iy: usize, ix: usize) -> usize {
        self.start
            + s * self.sample
            + ci * self.channel
            + ((iy % self.sh) * self.sw + ix % self.sw) * self.phase
            + iy / self.sh * self.row
            + ix / self.sw
    }

    /// The span of one input row's column phases whose phase 0 starts at `from`.
    fn row_phases(&self, from: usize) -> Range<usize> {
        from..from + (self.sw - 1) * self.phase + self.row
    }

    /// How far the taps of the next output row are: `sh` input rows, one row of the phase.
    fn next_output_row(&self, g: &Conv2dGeometry) -> usize {
        g.stride[0] / self.sh * self.row
    }
}

/// The input position read by output `(oy, ox)` at kernel offset `[ky, kx]`.
fn tap_input(g: &Conv2dGeometry, [ky, kx]: [usize; 2], oy: usize, ox: usize) -> (usize, usize) {
    let iy = oy * g.stride[0] + ky * g.dilation[0] - g.pad[0];
    let ix = ox * g.stride[1] + kx * g.dilation[1] - g.pad[1];
    (iy, ix)
}

/// Visits every input row of a chunk and group with the NCHW index of its first element
/// (in a tensor starting at the chunk's first sample when `samples_start` is 0) and where its
/// column phase 0 starts in the phase-split layout (column phase `p` starts `p *
/// phased.phase` later).
fn for_each_input_row(
    g: &Conv2dGeometry,
    samples: usize,
    samples_start: usize,
    group: usize,
    phased: TapLayout,
    mut visit: impl FnMut(usize, usize),
) {
    let direct = TapLayout::direct(g, samples_start, group);
    for s in 0..samples {
        for ci in 0..g.in_per_group() {
            let plane = direct.at(s, ci, 0, 0);
            for iy in 0..g.h {
                visit(plane + iy * g.w, phased.at(s, ci, iy, 0));
            }
        }
    }
}

/// Copies one input row into its phases (`phases[p]` gets columns `p, p + sw, ...`).
fn split_row<T: Copy>(row: &[T], sw: usize, phases: &mut [T], phase_len: usize) {
    if sw == 2 {
        // The common case, in a form the compiler vectorizes (a shuffle, not a gather).
        let (even, odd) = phases.split_at_mut(phase_len);
        let (even, odd) = (&mut even[..row.len().div_ceil(2)], &mut odd[..row.len() / 2]);
        for ((pair, e), o) in row.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
            *e = pair[0];
            *o = pair[1];
        }
        if row.len() % 2 == 1 {
            even[row.len() / 2] = row[row.len() - 1];
        }
        return;
    }
    for p in 0..sw.min(row.len()) {
        let phase = &mut phases[p * phase_len..];
        row[p..].iter().step_by(sw).zip(phase).for_each(|(&x, v)| *v = x);
    }
}

/// Adds the phases of one row back into it: the inverse of [`split_row`], summing.
fn merge_row<T: Copy + Add<Output = T>>(row: &mut [T], sw: usize, phases: &[T], phase_len: usize) {
    if sw == 2 {
        let (even, odd) = phases.split_at(phase_len);
        let (even, odd) = (&even[..row.len().div_ceil(2)], &odd[..row.len() / 2]);
        let last = row.len() - 1;
        for ((pair, &e), &o) in row.chunks_exact_mut(2).zip(even).zip(odd) {
            pair[0] = pair[0] + e;
            pair[1] = pair[1] + o;
        }
        if row.len() % 2 == 1 {
            row[last] = row[last] + even[row.len() / 2];
        }
        return;
    }
    for p in 0..sw.min(row.len()) {
        let phase = &phases[p * phase_len..];
        row[p..].iter_mut().step_by(sw).zip(phase).for_each(|(x, &v)| *x = *x + v);
    }
}

/// Visits every run of consecutive output positions of every kernel tap and chunk sample whose
/// taps land inside the input: its range in `col` (`[col_rows, samples * oh * ow]`) and
/// where its input taps start in `layout` (the run is contiguous in both: one output row, or
/// all the tap's rows when its columns are whole rows in both). The shared walk of im2col
/// and col2im.
fn for_each_tap_run(
    g: &Conv2dGeometry,
    layout: TapLayout,
    samples: usize,
    mut visit: impl FnMut(Range<usize>, usize),
) {
    let (plane, ow) = (g.out_plane(), g.ow);
    let n = samples * plane;
    let next_row = layout.next_output_row(g);
    for_each_kernel_tap(g, |row, ci, tap, rows, cols| {
        if cols.is_empty() || rows.is_empty() {
            return;
        }
        let (iy, ix) = tap_input(g, tap, rows.start, cols.start);
        let whole_rows = cols.len() == ow && next_row == ow;
        for s in 0..samples {
            let base = row * n + s * plane;
            let mut at = layout.at(s, ci, iy, ix);
            if whole_rows {
                let start = base + rows.start * ow;
                visit(start..start + rows.len() * ow, at);
                continue;
            }
            for oy in rows.clone() {
                let start = base + oy * ow + cols.start;
                visit(start..start + cols.len(), at);
                at += next_row;
            }
        }
    });
}

/// Writes the chunk's input taps into `col` from `src` laid out as `layout`. Only taps
/// inside the input are written: the others read padding and must already be zero, which
/// [`Scratch::for_im2col`] guarantees (they are the same positions for every chunk of a
/// call with the same sample count).
fn im2col<T: Copy>(g: &Conv2dGeometry, src: &[T], layout: TapLayout, samples: usize, col: &mut [T]) {
    for_each_tap_run(g, layout, samples, |run, from| {
        let len = run.len();
        copy_run(&mut col[run], &src[from..from + len]);
    });
}

/// `dst.copy_from_slice(src)` for the short runs of im2col (mostly 3 to 32 elements) as a
/// few fixed-size, possibly overlapping copies the compiler inlines, instead of a `memcpy`
/// call per run (which loops of any shape here turned into).
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    fn fixed<T: Copy, const K: usize>(dst: &mut [T], src: &[T], at: usize) {
        dst[at..at + K].copy_from_slice(&src[at..at + K]);
    }
    let n = dst.len();
    assert_eq!(n, src.len(), "copy_run: lengths differ");
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=8 => {
            fixed::<T, 4>(dst, src, 0);
            fixed::<T, 4>(dst, src, n - 4);
        }
        9..=16 => {
            fixed::<T, 8>(dst, src, 0);
            fixed::<T, 8>(dst, src, n - 8);
        }
        17..=32 => {
            fixed::<T, 16>(dst, src, 0);
            fixed::<T, 16>(dst, src, n - 16);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Adds `col` back into `dst` laid out as `layout` (col2im).
fn col2im<T: Copy + Add<Output = T>>(
    g: &Conv2dGeometry,
    col: &[T],
    samples: usize,
    layout: TapLayout,
    dst: &mut [T],
) {
    for_each_tap_run(g, layout, samples, |run, to| {
        let dst = &mut dst[to..to + run.len()];
        dst.iter_mut().zip(&col[run]).for_each(|(d, &v)| *d = *d + v);
    });
}

/// im2col of the chunk's samples of `x` (the whole NCHW input) for one group, through a
/// phase-split copy in `phased` when the column stride is above 1.
fn im2col_chunk<T: GemmScalar>(
    g: &Conv2dGeometry,
    x: &[T],
    samples: Range<usize>,
    group: usize,
    phased: &mut Vec<T>,
    col: &mut [T],
) {
    let sw = g.stride[1];
    if sw == 1 {
        let layout = TapLayout::direct(g, samples.start, group);
        return im2col(g, x, layout, samples.len(), col);
    }
    let layout = TapLayout::phased(g);
    let split = Scratch::fit(phased, layout.len(samples.len()));
    for_each_input_row(g, samples.len(), samples.start, group, layout, |row, to| {
        let phases = &mut split[layout.row_phases(to)];
        split_row(&x[row..row + g.w], sw, phases, layout.phase);
    });
    im2col(g, split, layout, samples.len(), col);
}

/// col2im of `col` into the chunk's part of the NCHW input gradient `dx` (starting at the
/// chunk's first sample) for one group, adding to what `dx` holds, through a phase-split sum
/// when the column stride is above 1.
fn col2im_chunk<T: GemmScalar + Add<Output = T>>(
    g: &Conv2dGeometry,
    col: &[T],
    samples: usize,
    group: usize,
    phased: &mut Vec<T>,
    dx: &mut [T],
) {
    let sw = g.stride[1];
    if sw == 1 {
        return col2im(g, col, samples, TapLayout::direct(g, 0, group), dx);
    }
    let (layout, sum) = col2im_phased(g, col, samples, phased);
    for_each_input_row(g, samples, 0, group, layout, |row, from| {
        let phases = &sum[layout.row_phases(from)];
        merge_row(&mut dx[row..row + g.w], sw, phases, layout.phase);
    });
}

/// col2im of `col` (one group, column stride above 1) into the phase-split sum in `phased`.
fn col2im_phased<'a, T: GemmScalar + Add<Output = T>>(
    g: &Conv2dGeometry,
    col: &[T],
    samples: usize,
    phased: &'a mut Vec<T>,
) -> (TapLayout, &'a [T]) {
    let layout = TapLayout::phased(g);
    let sum = Scratch::fit(phased, layout.len(samples));
    sum.fill(T::zero());
    col2im(g, col, samples, layout, sum);
    (layout, sum)
}

/// The chunk's output-gradient channels of one group as a `[out_per_group, samples * oh * ow]`
/// matrix (NCHW keeps samples apart, so this is a copy).
fn gather_channels<T: Copy>(
    g: &Conv2dGeometry,
    dy: &[T],
    samples: Range<usize>,
    group: usize,
    out: &mut [T],
) {
    let plane = g.out_plane();
    let n = samples.len() * plane;
    for co in 0..g.out_per_group() {
        let channel = group * g.out_per_group() + co;
        for (s, b) in samples.clone().enumerate() {
            let src = (b * g.c_out + channel) * plane;
            out[co * n + s * plane..co * n + (s + 1) * plane]
                .copy_from_slice(&dy[src..src + plane]);
        }
    }
}

/// [`gather_channels`] transposed: `out[(s * plane + p) * out_per_group + co]`.
fn gather_channels_transposed<T: Copy>(
    g: &Conv2dGeometry,
    dy: &[T],
    samples: Range<usize>,
    group: usize,
    out: &mut [T],
) {
    let (plane, opg) = (g.out_plane(), g.out_per_group());
    for (s, b) in samples.enumerate() {
        let out = &mut out[s * plane * opg..(s + 1) * plane * opg];
        for co in 0..opg {
            let src = (b * g.c_out + group * opg + co) * plane;
            for (p, &v) in dy[src..src + plane].iter().enumerate() {
                out[p * opg + co] = v;
            }
        }
    }
}

/// Forward convolution: NCHW `x` and `[c_out, c_in/groups, kh, kw]` `weight` to NCHW output.
pub fn conv2d_forward<T: GemmScalar + Default + Send + Sync>(
    g: &Conv2dGeometry,
    x: &[T],
    weight: &[T],
) -> Vec<T> {
    let ranges = g.chunks::<T>();
    let parallelism = chunk_parallelism(ranges.len());
    let (rows, plane, opg) = (g.col_rows(), g.out_plane(), g.out_per_group());
    for_each_chunk(&ranges, g.c_out * plane, |scratch, i, part| {
        let samples = ranges[i].clone();
        let n = samples.len() * plane;
        let (col, product, phased) = scratch.for_im2col(rows * n, opg * n);
        let gemm_of_group = |group: usize, col: &mut [T], product: &mut [T], phased: &mut Vec<T>| {
            im2col_chunk(g, x, samples.clone(), group, phased, col);
            let w = &weight[group * opg * rows..(group + 1) * opg * rows];
            gemm_strided(
                [opg, n, rows],
                product,
                [n, 1],
                false,
                w,
                [rows, 1],
                col,
                [n, 1],
                parallelism,
            );
        };
        if g.groups == 1 {
            // product [c_out, samples * plane] to NCHW, written in order.
            gemm_of_group(0, col, product, phased);
            for s in 0..samples.len() {
                for co in 0..opg {
                    part.push_slice(&product[co * n + s * plane..co * n + (s + 1) * plane]);
                }
            }
            return;
        }
        let y = part.zeroed();
        for group in 0..g.groups {
            gemm_of_group(group, col, product, phased);
            for co in 0..opg {
                for s in 0..samples.len() {
                    let dst = (s * g.c_out + group * opg + co) * plane;
                    y[dst..dst + plane]
                        .copy_from_slice(&product[co * n + s * plane..co * n + (s + 1) * plane]);
                }
            }
        }
    })
}

/// Gradient of the input: NCHW `dy` (the conv's output shape) to NCHW `dx` (its input
/// shape). With `g` from [`Conv2dGeometry::of_conv_transpose`] this is `conv_transpose2d`.
pub fn conv2d_input_grad<T: GemmScalar + Default + Add<Output = T> + Send + Sync>(
    g: &Conv2dGeometry,
    dy: &[T],
    weight: &[T],
) -> Vec<T> {
    let ranges = g.chunks::<T>();
    let parallelism = chunk_parallelism(ranges.len());
    let (rows, plane, opg) = (g.col_rows(), g.out_plane(), g.out_per_group());
    // wᵀ stored row-major, once per call: gemm's kernels take it 3–13 % faster than `w` read
    // with transposed strides, which pays for the copy once the GEMMs are long enough.
    let w_t = (g.batch * plane >= TRANSPOSED_INPUT_GRAD_MIN)
        .then(|| transposed_blocks(weight, opg, rows));
    for_each_chunk(&ranges, g.c_in * g.in_plane(), |scratch, i, part| {
        let samples = ranges[i].clone();
        let n = samples.len() * plane;
        // col is the GEMM's output here, dy_chunk a full copy: both wholly written.
        let (col, dy_chunk, phased) = scratch.overwritten(rows * n, opg * n);
        let gemm_of_group = |group: usize, col: &mut [T], dy_chunk: &mut [T]| {
            gather_channels(g, dy, samples.clone(), group, dy_chunk);
            let (w_t, w_t_strides) = match &w_t {
                Some(w_t) => (&w_t[..], [opg, 1]),
                None => (weight, [1, rows]),
            };
            let w_t = &w_t[group * opg * rows..(group + 1) * opg * rows];
            // col [rows, n] = wᵀ [rows, opg] · dy_chunk [opg, n]
            gemm_strided(
                [rows, n, opg],
                col,
                [n, 1],
                false,
                w_t,
                w_t_strides,
                dy_chunk,
                [n, 1],
                parallelism,
            );
        };
        let sw = g.stride[1];
        if g.groups == 1 && sw > 1 {
            // The phase-split sum holds every tap of every input element: merged rows are
            // the whole input gradient, written in order.
            gemm_of_group(0, col, dy_chunk);
            let (layout, sum) = col2im_phased(g, col, samples.len(), phased);
            for_each_input_row(g, samples.len(), 0, 0, layout, |_, from| {
                let phases = &sum[layout.row_phases(from)];
                part.push_interleaved(g.w, sw, phases, layout.phase);
            });
            return;
        }
        let dx = part.zeroed();
        for group in 0..g.groups {
            gemm_of_group(group, col, dy_chunk);
            col2im_chunk(g, col, samples.len(), group, phased, dx);
        }
    })
}

/// Gradient of the weight: NCHW `x` and `dy` to `[c_out, c_in/groups, kh, kw]`. With `g`
/// from [`Conv2dGeometry::of_conv_transpose`], `x` the transposed conv's output gradient
/// and `dy` its input, this is the transposed conv's weight gradient.
///
/// With enough positions per channel the chunks' GEMMs accumulate the transpose, `dwᵀ [rows,
/// opg] += col [rows, n] · dyᵀ [n, opg]`, from `dy` gathered transposed: gemm's kernels run
/// that orientation up to 3.4x faster than `dw += dy · colᵀ` (99–115 against 33–78 GFLOP/s
/// on a core for a DCGAN's 64- to 256-channel layers), and the sum is transposed back once.
pub fn conv2d_weight_grad<T: GemmScalar + Default + Add<Output = T> + Send + Sync>(
    g: &Conv2dGeometry,
    x: &[T],
    dy: &[T],
) -> Vec<T> {
    let ranges = g.chunks::<T>();
    let parallelism = chunk_parallelism(ranges.len());
    let (rows, plane, opg) = (g.col_rows(), g.out_plane(), g.out_per_group());
    let transpose = g.batch * plane >= TRANSPOSED_WEIGHT_GRAD_MIN;
    let sum = sum_over_chunks(ranges.len(), g.c_out * rows, |scratch, i, dw| {
        let samples = ranges[i].clone();
        let n = samples.len() * plane;
        let (col, dy_chunk, phased) = scratch.for_im2col(rows * n, opg * n);
        for group in 0..g.groups {
            im2col_chunk(g, x, samples.clone(), group, phased, col);
            let dw = &mut dw[group * opg * rows..(group + 1) * opg * rows];
            if transpose {
                gather_channels_transposed(g, dy, samples.clone(), group, dy_chunk);
                // dwᵀ [rows, opg] += col [rows, n] · dy_chunkᵀ [n, opg]
                gemm_strided(
                    [rows, opg, n],
                    dw,
                    [opg, 1],
                    true,
                    col,
                    [n, 1],
                    dy_chunk,
                    [opg, 1],
                    parallelism,
                );
            } else {
                gather_channels(g, dy, samples.clone(), group, dy_chunk);
                // dw [opg, rows] += dy_chunk [opg, n] · colᵀ [n, rows]
                gemm_strided(
                    [opg, rows, n],
                    dw,
                    [rows, 1],
                    true,
                    dy_chunk,
                    [n, 1],
                    col,
                    [1, n],
                    parallelism,
                );
            }
        }
    });
    match transpose {
        true => transposed_blocks(&sum, rows, opg),
        false => sum,
    }
}

/// Each `[rows, cols]` row-major block of `src` transposed to `[cols, rows]`, in parallel,
/// a few output rows per part: their reads share cache lines (a weight of a few MiB read
/// column by column on one thread took longer than the GEMMs it saved).
fn transposed_blocks<T: Copy + Default + Send + Sync>(src: &[T], rows: usize, cols: usize) -> Vec<T> {
    const TILE: usize = 16;
    let block = rows * cols;
    let tiles = cols.div_ceil(TILE);
    let tile_cols = |t: usize| t * TILE..((t + 1) * TILE).min(cols);
    let sizes: Vec<usize> = (0..src.len() / block.max(1))
        .flat_map(|_| (0..tiles).map(|t| tile_cols(t).len() * rows))
        .collect();
    let fill = |i: usize, part: &mut Part<'_, T>| {
        let src = &src[(i / tiles) * block..(i / tiles + 1) * block];
        let mut column = vec![T::default(); rows];
        for c in tile_cols(i % tiles) {
            for (r, value) in column.iter_mut().enumerate() {
                *value = src[r * cols + c];
            }
            part.push_slice(&column);
        }
    };
    #[cfg(feature = "rayon")]
    return super::written::written_in_parts(&sizes, fill);
    #[cfg(not(feature = "rayon"))]
    super::written::written_in_order(&sizes, fill)
}

/// Which of the three passes to run.
#[derive(Clone, Copy, Debug)]
pub enum Pass {
    Forward,
    InputGrad,
    WeightGrad,
}

/// Runs one pass on flex tensors of any float dtype (bf16 through f32), returning a
/// contiguous tensor of `out_shape`. `a` and `b` are the pass's two operands in the order of
/// the functions above.
pub fn run(
    pass: Pass,
    g: &Conv2dGeometry,
    a: FlexTensor,
    b: FlexTensor,
    out_shape: Shape,
) -> FlexTensor {
    fn typed<T: GemmScalar + Default + Add<Output = T> + Send + Sync>(
        pass: Pass,
        g: &Conv2dGeometry,
        a: &FlexTensor,
        b: &FlexTensor,
    ) -> Vec<T> {
        let (a, b) = (a.storage::<T>(), b.storage::<T>());
        match pass {
            Pass::Forward => conv2d_forward(g, a, b),
            Pass::InputGrad => conv2d_input_grad(g, a, b),
            Pass::WeightGrad => conv2d_weight_grad(g, a, b),
        }
    }
    let input = g.batch * g.c_in * g.in_plane();
    let output = g.batch * g.c_out * g.out_plane();
    let weight = g.c_out * g.col_rows();
    let expected = match pass {
        Pass::Forward => [input, weight, output],
        Pass::InputGrad => [output, weight, input],
        Pass::WeightGrad => [input, output, weight],
    };
    let found = [
        a.shape().num_elements(),
        b.shape().num_elements(),
        out_shape.num_elements(),
    ];
    assert_eq!(
        found, expected,
        "conv2d {pass:?}: operand sizes do not match {g:?}"
    );
    assert_eq!(
        a.dtype(),
        b.dtype(),
        "conv2d {pass:?}: operands of different dtypes"
    );
    let (a, b) = (a.to_contiguous(), b.to_contiguous());
    let dtype = a.dtype();
    let bytes = match dtype {
        DType::F32 => Bytes::from_elems(typed::<f32>(pass, g, &a, &b)),
        DType::F64 => Bytes::from_elems(typed::<f64>(pass, g, &a, &b)),
        DType::F16 => Bytes::from_elems(typed::<f16>(pass, g, &a, &b)),
        DType::BF16 => {
            let widen = |t: &FlexTensor| super::module::cast_to_f32(t.clone(), bf16::to_f32);
            let out = typed::<f32>(pass, g, &widen(&a), &widen(&b));
            Bytes::from_elems(out.into_iter().map(bf16::from_f32).collect::<Vec<_>>())
        }
        other => panic!("conv2d: unsupported dtype {other:?}"),
    };
    FlexTensor::new(bytes, Layout::contiguous(out_shape), dtype)
}
