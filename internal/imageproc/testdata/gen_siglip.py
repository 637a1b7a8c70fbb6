#!/usr/bin/python3
"""Writes siglip_reference.safetensors: SigLIP-style preprocessing done with
Pillow, the reference for internal/imageproc's TestSiglipParityWithPillow.

It follows transformers' SiglipImageProcessor (slow, PIL path; transformers
v4.47, models/siglip/image_processing_siglip.py): convert("RGB"), resize to
exactly (width, height) with the configured resample through
image_transforms.resize, i.e. PIL.Image.resize(..., reducing_gap=None),
the aspect ratio not kept and no center crop; then rescale (x * 1/255, float64
then float32) and normalize with mean = std = 0.5 (float32).

Inputs are the images of ../shared/golden/preprocess (read at generation
time, not copied) and two small images this script draws itself (noise, so
every tap of the filter matters, written next to this script as PNG). Only
the small outputs are committed. Run from the repository root:

    /usr/bin/python3 internal/imageproc/testdata/gen_siglip.py

Debian bookworm: python3-pil 9.4.0, python3-numpy.
"""

import json
import os
import struct

import numpy as np
import PIL
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "..", "shared", "golden", "preprocess")

# (name, file, directory, (width, height), PIL resample)
CASES = []
for f in ["exact.png", "gray.jpg", "landscape_500x375.jpg", "odd_crop_301x227.png", "palette.png",
          "portrait_375x500.jpg", "rgba.png", "small_upscale_100x60.png", "wide_1000x200.png"]:
    CASES.append((f.split(".")[0] + "_64_bilinear", f, "shared", (64, 64), Image.BILINEAR))
CASES += [
    # The real SigLIP geometry, upscaling both ways.
    ("small_upscale_224_bilinear", "small_upscale_100x60.png", "shared", (224, 224), Image.BILINEAR),
    # Not square, one axis down, one up.
    ("wide_96x40_bilinear", "wide_1000x200.png", "shared", (96, 40), Image.BILINEAR),
    # Drawn here: noise, up and down by non-integer factors.
    ("noise_up_bilinear", "noise_37x23.png", "here", (61, 50), Image.BILINEAR),
    ("noise_down_bilinear", "noise_120x80.png", "here", (29, 41), Image.BILINEAR),
    # SiglipImageProcessor's default resample (bicubic) with the stretch resize.
    ("noise_down_bicubic", "noise_120x80.png", "here", (29, 41), Image.BICUBIC),
    ("odd_crop_48_bicubic", "odd_crop_301x227.png", "shared", (48, 48), Image.BICUBIC),
]


def draw_noise():
    rng = np.random.default_rng(15)
    for w, h in [(37, 23), (120, 80)]:
        path = os.path.join(HERE, f"noise_{w}x{h}.png")
        a = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        # A few saturated runs so clipping at 0 and 255 is exercised.
        a[h // 2, :, :] = 255
        a[:, w // 3, :] = 0
        Image.fromarray(a, "RGB").save(path)


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def main():
    draw_noise()
    tensors, meta = {}, []
    for name, f, where, (w, h), resample in CASES:
        src = os.path.join(SHARED if where == "shared" else HERE, f)
        im = Image.open(src)
        mode, size = im.mode, im.size
        out = im.convert("RGB").resize((w, h), resample=resample, reducing_gap=None)
        a = np.asarray(out, dtype=np.uint8)
        assert a.shape == (h, w, 3)
        tensors[name] = ("U8", a.shape, a.tobytes())
        meta.append({"name": name, "file": f, "dir": where, "mode": mode, "size": list(size),
                     "out": [w, h], "resample": int(resample)})
    # SigLIP's normalisation of every level, as the processor computes it:
    # rescale in float64 (numpy), cast to float32, then (x - mean) / std in float32.
    levels = np.arange(256, dtype=np.float64) * (1 / 255)
    levels = levels.astype(np.float32)
    mean = np.array(0.5, dtype=np.float32)
    std = np.array(0.5, dtype=np.float32)
    lut = ((levels - mean) / std).astype(np.float32)
    tensors["normalized_levels"] = ("F32", (256,), lut.astype("<f4").tobytes())
    save_safetensors(os.path.join(HERE, "siglip_reference.safetensors"), tensors,
                     {"cases": json.dumps(meta), "pillow": PIL.__version__,
                      "follows": "transformers v4.47 SiglipImageProcessor (slow)"})


if __name__ == "__main__":
    main()
