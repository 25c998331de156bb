"""More JPEG fixtures and what libjpeg-turbo (through PIL) makes of them, for the paths of
pipec's JPEG decoder that tests/images/gen.py's files do not reach: restart markers (baseline
and progressive), images 1 and 2 samples wide or high (libjpeg upsamples such chroma by
replication, not its "fancy" filter), RGB-coded files (Adobe transform 0), very coarse and
very fine quantization, grey progressive files, 16-bit quantization tables.

Run from the repository root with Pillow and numpy installed (needs no TensorFlow):
    python3 tests/images/gen_jpeg.py
It writes tests/images/src/jpeg/*.jpg, tests/images/expect/jpeg.npz and
tests/images/jpeg_cases.json, read by crates/tensor/tests/images_tf.rs.
"""
import io
import json
import pathlib

import numpy as np
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src" / "jpeg"
rng = np.random.default_rng(1713)


def photo(h, w, c):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [
        128 + 100 * np.sin(x / 2.3 + k) * np.cos(y / 3.9 - k) + rng.normal(0, 20, (h, w))
        for k in range(c)
    ]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def files():
    """name -> (array, PIL save options)."""
    out = {}
    for sub, tag in ((2, "420"), (1, "422"), (0, "444")):
        out[f"restart_{tag}_19x27.jpg"] = (photo(19, 27, 3), dict(quality=88, subsampling=sub,
                                                                    restart_marker_blocks=3))
    out["restart_rows_progressive_33x18.jpg"] = (photo(33, 18, 3), dict(
        quality=80, progressive=True, restart_marker_rows=1))
    for h, w in ((1, 1), (1, 5), (5, 1), (2, 2), (2, 7), (7, 2), (3, 3), (4, 5)):
        out[f"tiny420_{h}x{w}.jpg"] = (photo(h, w, 3), dict(quality=90, subsampling=2))
        out[f"tiny422_{h}x{w}.jpg"] = (photo(h, w, 3), dict(quality=90, subsampling=1))
    out["q100_23x17.jpg"] = (photo(23, 17, 3), dict(quality=100, subsampling=2))
    out["q3_23x17.jpg"] = (photo(23, 17, 3), dict(quality=3, subsampling=2))
    out["q100_progressive_16x40.jpg"] = (photo(16, 40, 3), dict(quality=100, progressive=True))
    out["gray_progressive_25x14.jpg"] = (photo(25, 14, 1)[..., 0], dict(quality=85, progressive=True))
    out["gray_restart_9x30.jpg"] = (photo(9, 30, 1)[..., 0], dict(quality=85, restart_marker_blocks=1))
    out["rgb_coded_12x13.jpg"] = (photo(12, 13, 3), dict(quality=90, keep_rgb=True, subsampling=0))
    # Coarse 16-bit tables (values above 255): libjpeg writes them with 16-bit precision.
    out["qt16_15x11.jpg"] = (photo(15, 11, 3), dict(qtables=[[300 + k for k in range(64)]] * 2,
                                                     subsampling=2))
    return out


def main():
    SRC.mkdir(parents=True, exist_ok=True)
    cases, arrays = [], {}
    for name, (arr, opts) in files().items():
        Image.fromarray(arr).save(SRC / name, "JPEG", **opts)
        data = (SRC / name).read_bytes()
        im = Image.open(io.BytesIO(data))
        native = np.asarray(im)
        expect = {0: native[..., None] if native.ndim == 2 else native,
                  3: np.asarray(im.convert("RGB"))}
        # libjpeg's own grey output (JCS_GRAYSCALE): PIL's draft mode "L" at full size.
        grey = Image.open(io.BytesIO(data))
        grey.draft("L", grey.size)
        assert grey.size == im.size
        expect[1] = np.asarray(grey.convert("L"))[..., None]
        for ch, out in expect.items():
            key = f"j{len(cases)}"
            arrays[key] = out
            cases.append({"file": "jpeg/" + name, "op": "decode_jpeg", "channels": ch,
                          "expect": key, "oracle": "pil", "tolerance": 0})
    np.savez(HERE / "expect" / "jpeg.npz", **arrays)
    (HERE / "jpeg_cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print(f"{len(cases)} JPEG cases")


if __name__ == "__main__":
    main()
