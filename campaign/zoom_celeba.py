"""CelebA crops zoomed to the painted portraits' tighter framing (the art-portraits-64
experiment of 2026-12-04: a parent adapted to it first). Writes a tar of PNGs outside the
repository; CelebA's terms (research only) apply to the result.

    python3 campaign/zoom_celeba.py [ZOOM] [OUT]
    (defaults: 1.3, $HOME/.cache/retrato/datasets/zoom/celeba64-zoom1.3_train.tar)
"""
import io
import os
import sys
import tarfile

from PIL import Image

SOURCE = os.path.join(os.path.dirname(__file__), "../../shared/data/celeba/celeba64_train.tar")


def main():
    zoom = float(sys.argv[1]) if len(sys.argv) > 1 else 1.3
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser(
        f"~/.cache/retrato/datasets/zoom/celeba64-zoom{zoom}_train.tar")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    count = 0
    with tarfile.open(SOURCE) as source, tarfile.open(out + ".part", "w") as target:
        for member in source:
            if not member.isfile():
                continue
            image = Image.open(source.extractfile(member)).convert("RGB")
            side = round(image.width / zoom)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            zoomed = image.crop((left, top, left + side, top + side)).resize(
                image.size, Image.LANCZOS)
            data = io.BytesIO()
            zoomed.save(data, "PNG")
            info = tarfile.TarInfo(member.name.rsplit(".", 1)[0] + ".png")
            info.size = data.tell()
            data.seek(0)
            target.addfile(info, data)
            count += 1
    os.replace(out + ".part", out)
    print(f"{count} images zoomed {zoom}x -> {out}")


if __name__ == "__main__":
    main()
