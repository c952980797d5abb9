"""Make the PDQ reference vectors in this folder.

Run with a Python that has `pdqhash` (PyPI; it builds Meta's C++ PDQ code
from ThreatExchange), `numpy` and `pillow`:

    python3 -m venv /tmp/pdq && /tmp/pdq/bin/pip install pdqhash numpy pillow
    /tmp/pdq/bin/python make_reference.py

It writes synthetic greyscale PNGs (deterministic) and `expected.txt`, one
line per image: `<64 hex> <quality> <file>`, then for the dihedral check
`dihedral <8 hashes, comma-separated> <file>`.

Why greyscale: the `pdqhash` binding computes luma from RGB in double
precision before handing it to the C++ core, whereas Meta's own tools (and
tapis) compute it in single precision, so RGB inputs can differ in the last
bit of a luma value. Greyscale images take the reference's grey path (luma is
the pixel value), so the C++ core sees exactly the luma tapis sees.
"""

import sys

import numpy as np
import pdqhash
from PIL import Image


def hexify(vector):
    # pdqhash returns bit 255 first
    bits = "".join(str(int(b)) for b in vector)
    return "%064x" % int(bits, 2)


def image(seed, rows, cols):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    img = 128 + 60 * np.sin(x / cols * rng.uniform(2, 9)) * np.cos(y / rows * rng.uniform(2, 9))
    for _ in range(6):
        cy, cx = rng.uniform(0, rows), rng.uniform(0, cols)
        r = rng.uniform(0.05, 0.3) * min(rows, cols)
        img += rng.uniform(-70, 70) * (((y - cy) ** 2 + (x - cx) ** 2) < r * r)
    img += rng.normal(0, 3, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    sizes = [(1, 64, 64), (2, 75, 100), (3, 517, 333), (4, 480, 640), (5, 7, 9), (6, 1000, 37)]
    lines = []
    for seed, rows, cols in sizes:
        grey = image(seed, rows, cols)
        name = "grey-%d-%dx%d.png" % (seed, cols, rows)
        Image.fromarray(grey, mode="L").save(name, optimize=True)
        back = np.asarray(Image.open(name))
        rgb = np.ascontiguousarray(np.stack([back] * 3, axis=-1))
        vector, quality = pdqhash.compute(rgb)
        lines.append("%s %d %s" % (hexify(vector), quality, name))
        vectors, quality = pdqhash.compute_dihedral(rgb)
        lines.append("dihedral %s %s" % (",".join(hexify(v) for v in vectors), name))
    with open("expected.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    colour()


def colour():
    """Colour references: the bridge JPEGs (copied from ThreatExchange) and
    one of them saved as a lossless RGB PNG, decoded by Pillow."""
    rgb = np.asarray(Image.open("bridge-square-256x256.jpg").convert("RGB"))
    Image.fromarray(rgb).save("bridge-256-rgb.png", optimize=True)
    out = []
    for name in ["bridge-square-128x128.jpg", "bridge-shrink-a-lot.jpg",
                 "bridge-square-256x256.jpg", "bridge-256-rgb.png"]:
        a = np.ascontiguousarray(np.asarray(Image.open(name).convert("RGB")))
        vector, quality = pdqhash.compute(a)
        out.append("%s %d %s" % (hexify(vector), quality, name))
    with open("rgb-expected.txt", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
