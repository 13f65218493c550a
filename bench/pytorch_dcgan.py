#!/usr/bin/env python3
"""The PyTorch side of `bench/train.sh`: the DCGAN of pytorch/examples (nz 100, ngf = ndf = 64,
64x64, batch norm in G and D), BCE-with-logits, Adam (lr 2e-4, betas 0.5/0.999, eps 1e-8),
one step = D on a real and a fake batch, then G -- exactly what `retrato bench train
--family dcgan --objective bce` times. Synthetic images: decoding is not measured.

Prints one JSON line: median step time, images/s, peak RSS.

With `--sample N`: generation instead, what `retrato bench sample --n N` times -- the generator
in eval mode under `torch.inference_mode()`, batches of 64, images mapped to [0, 1] and
copied out as NumPy arrays.
"""
import argparse
import json
import resource
import time

import torch
from torch import nn


def generator(nz=100, ngf=64, nc=3):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )


def discriminator(ndf=64, nc=3):
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),  # logits; the loss applies the sigmoid
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sample", type=int, default=0, help="time generating N images instead")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of --sample")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.sample:
        return sample(args, device)
    g, d = generator().to(device), discriminator().to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(args.batch, 3, 64, 64, device=device) * 2 - 1
    ones = torch.ones(args.batch, device=device)
    zeros = torch.zeros(args.batch, device=device)

    def step():
        z = torch.randn(args.batch, 100, 1, 1, device=device)
        fake = g(z).detach()
        loss_d = bce(d(real).view(-1), ones) + bce(d(fake).view(-1), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        z = torch.randn(args.batch, 100, 1, 1, device=device)
        loss_g = bce(d(g(z)).view(-1), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return loss_d.item() + loss_g.item()  # waits for the device, like retrato's read

    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "tool": "pytorch", "device": device.type, "torch": torch.__version__, "batch": args.batch,
        "steps": args.steps,
        "median_step_s": median, "min_step_s": times[0], "max_step_s": times[-1],
        "images_per_s": args.batch / median,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }))


def sample(args, device):
    g = generator().to(device).eval()
    times = []
    with torch.inference_mode():
        for run in range(1 + args.runs):
            start = time.perf_counter()
            for first in range(0, args.sample, 64):
                z = torch.randn(min(64, args.sample - first), 100, 1, 1, device=device)
                images = ((g(z) + 1) * 0.5).clamp(0, 1).cpu().numpy()
            if run >= 1:
                times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "tool": "pytorch", "bench": "sample", "torch": torch.__version__, "n": args.sample,
        "runs": args.runs, "median_s": median, "min_s": times[0], "max_s": times[-1],
        "images_per_s": args.sample / median,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
