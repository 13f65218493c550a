"""What the art target means in pictures: 200 of the training paintings, damaged in known ways
(blur, a lower resolution, noise), written as .npy sets for `retrato eval fid --real SET --real
art_portraits64_test.npy --n 200`, so that a FID-200 can be read as "the paintings themselves
through this much damage" (README, "Painted portraits"; campaign art session 9).

    python3 campaign/degrade_paintings.py ../shared/data/art_portraits/art_portraits64_train.tar OUT_DIR
"""

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def main(train_tar: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(train_tar) as tar:
        members = [m for m in tar.getmembers() if m.isfile()][:200]
        paintings = [
            Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB") for m in members
        ]
    noise = np.random.default_rng(0)

    def save(name, images):
        np.save(out / f"{name}.npy", np.stack([np.asarray(i, dtype=np.uint8) for i in images]))

    def noisy(image, sigma):
        pixels = np.asarray(image, np.float32) + noise.normal(0, sigma, (64, 64, 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    save("clean", paintings)
    for radius in (0.5, 1.0, 1.5):
        save(f"blur{radius}", [p.filter(ImageFilter.GaussianBlur(radius)) for p in paintings])
    for size in (32, 24):
        save(
            f"down{size}",
            [p.resize((size, size), Image.BICUBIC).resize((64, 64), Image.BICUBIC) for p in paintings],
        )
    for sigma in (8, 16):
        save(f"noise{sigma}", [noisy(p, sigma) for p in paintings])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
