//! Output vectors that the workers of a parallel pass write once, part by part (retrato
//! patch, see `RETRATO.md` at the crate root). An output allocated zeroed and then
//! overwritten paid for a full extra pass, on one thread, over every conv, conv-transpose and
//! batch-norm output (memset was ~3 % of a DCGAN training step, ~5 % of generation).

use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// One part of an output, written front to back. Every method initialises each slot it
/// moves past, so a part whose cursor reached its end is fully initialised.
pub(crate) struct Part<'a, T> {
    slots: &'a mut [MaybeUninit<T>],
    at: usize,
}

impl<T: Copy + Default> Part<'_, T> {
    /// The slots left to write.
    pub(crate) fn remaining(&self) -> usize {
        self.slots.len() - self.at
    }

    fn next(&mut self, len: usize) -> &mut [MaybeUninit<T>] {
        let slots = &mut self.slots[self.at..self.at + len];
        self.at += len;
        slots
    }

    /// Appends `values`.
    pub(crate) fn push_slice(&mut self, values: &[T]) {
        for (slot, &v) in self.next(values.len()).iter_mut().zip(values) {
            slot.write(v);
        }
    }

    /// Appends `f(x)` for every `x` of `xs`.
    pub(crate) fn push_mapped<S: Copy>(&mut self, xs: &[S], f: impl Fn(S) -> T) {
        for (slot, &x) in self.next(xs.len()).iter_mut().zip(xs) {
            slot.write(f(x));
        }
    }

    /// Appends `f(a, b)` for every pair of `a` and `b` (of equal lengths).
    pub(crate) fn push_zipped<S: Copy>(&mut self, a: &[S], b: &[S], f: impl Fn(S, S) -> T) {
        assert_eq!(a.len(), b.len(), "push_zipped: lengths differ");
        for ((slot, &x), &y) in self.next(a.len()).iter_mut().zip(a).zip(b) {
            slot.write(f(x, y));
        }
    }

    /// Appends a row of `len` elements gathered from its `sw` column phases: element `j` is
    /// `phases[(j % sw) * phase_len + j / sw]` (the inverse of splitting a row by phase).
    pub(crate) fn push_interleaved(&mut self, len: usize, sw: usize, phases: &[T], phase_len: usize) {
        assert!(sw > 0 && phase_len >= len.div_ceil(sw), "push_interleaved: short phases");
        assert!(phases.len() >= (sw - 1) * phase_len + len.div_ceil(sw), "push_interleaved: short phases");
        let slots = self.next(len);
        if sw == 2 {
            // The common case, in a form the compiler vectorizes.
            let (even, odd) = phases.split_at(phase_len);
            let mut pairs = slots.chunks_exact_mut(2);
            for ((pair, &e), &o) in (&mut pairs).zip(even).zip(odd) {
                pair[0].write(e);
                pair[1].write(o);
            }
            if let [last] = pairs.into_remainder() {
                last.write(even[len / 2]);
            }
            return;
        }
        for p in 0..sw.min(len) {
            let phase = &phases[p * phase_len..];
            for (slot, &v) in slots[p..].iter_mut().step_by(sw).zip(phase) {
                slot.write(v);
            }
        }
    }

    /// Writes zeros in every remaining slot and returns the whole part, initialised: for
    /// passes that accumulate into their output.
    pub(crate) fn zeroed(&mut self) -> &mut [T] {
        let rest = self.remaining();
        for slot in self.next(rest) {
            slot.write(T::default());
        }
        let slots: *mut [MaybeUninit<T>] = &mut *self.slots;
        // SAFETY: the cursor reached the end, so every slot is initialised (by the methods
        // above, each of which writes every slot it moves past, or by the zeros just written);
        // the slice borrows `self`, so nothing else can reach the slots meanwhile.
        unsafe { &mut *(slots as *mut [T]) }
    }
}

/// A vector made of consecutive parts of the given sizes, part `i` written by `fill(i, part)`
/// in parallel when rayon is on. Panics if `fill` leaves a part short of its end.
#[cfg(feature = "rayon")]
pub(crate) fn written_in_parts<T: Copy + Default + Send + Sync>(
    sizes: &[usize],
    fill: impl Fn(usize, &mut Part<'_, T>) + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    written(sizes, |parts| {
        parts
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut part)| fill_part(i, &mut part, &fill))
    })
}

/// Like [`written_in_parts`], one part after the other, so `fill` may keep state between
/// parts (the build without rayon).
#[cfg_attr(feature = "rayon", allow(dead_code))]
pub(crate) fn written_in_order<T: Copy + Default>(
    sizes: &[usize],
    mut fill: impl FnMut(usize, &mut Part<'_, T>),
) -> Vec<T> {
    written(sizes, |parts| {
        for (i, mut part) in parts.into_iter().enumerate() {
            fill_part(i, &mut part, &mut fill);
        }
    })
}

/// `fill(i, part)`, then the check that makes the part initialised.
fn fill_part<T: Copy + Default>(i: usize, part: &mut Part<'_, T>, fill: impl FnOnce(usize, &mut Part<'_, T>)) {
    fill(i, part);
    assert_eq!(part.remaining(), 0, "part {i} of an output was left unwritten");
}

/// The vector of `sizes`' parts, given uninitialised to `write_parts`, which must pass each
/// through [`fill_part`].
fn written<T: Copy + Default>(sizes: &[usize], write_parts: impl FnOnce(Vec<Part<'_, T>>)) -> Vec<T> {
    let len = sizes.iter().sum();
    let mut out = Vec::with_capacity(len);
    let mut parts = Vec::with_capacity(sizes.len());
    let mut rest = &mut out.spare_capacity_mut()[..len];
    for &size in sizes {
        let (slots, tail) = rest.split_at_mut(size);
        parts.push(Part { slots, at: 0 });
        rest = tail;
    }
    write_parts(parts);
    // SAFETY: the parts cover `out[..len]` and `fill_part` checked that each was written to
    // its end (a failed check unwinds before this line, leaving `out` empty).
    unsafe { out.set_len(len) };
    out
}
