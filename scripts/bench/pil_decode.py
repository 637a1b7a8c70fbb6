#!/usr/bin/env python3
"""Pillow's side of scripts/bench/jpeg_compare.sh: CLIP preprocessing of one
image file as Hugging Face's CLIPImageProcessor does it on Pillow, in this
one process (so on one core): Image.open, convert("RGB"), bicubic resize of
the shortest side to 224 (long side floored), center crop 224x224, the
pixels as bytes. Prints one JSON line with images per CPU-second
(time.process_time) and per wall second.

Run: /usr/bin/python3 scripts/bench/pil_decode.py FILE [--seconds 5]
"""
import argparse, io, json, time

import PIL
from PIL import Image


def preprocess(data, size=224):
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    if w <= h:
        nw, nh = size, h * size // w
    else:
        nw, nh = w * size // h, size
    im = im.resize((nw, nh), Image.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return im.crop((left, top, left + size, top + size)).tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--seconds", type=float, default=5.0, help="CPU seconds to run for (default 5)")
    a = ap.parse_args()
    data = open(a.file, "rb").read()
    assert len(preprocess(data)) == 224 * 224 * 3  # and warm up
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    while time.process_time() - c0 < a.seconds:
        for _ in range(20):
            preprocess(data)
        n += 20
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(json.dumps({"pillow": PIL.__version__, "images": n, "cpu_s": cpu, "wall_s": wall,
                      "images_per_cpu_s": n / cpu, "images_per_s": n / wall}))


if __name__ == "__main__":
    main()
