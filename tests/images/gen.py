"""Writes the image fixtures and what TensorFlow and PIL make of them (the oracles).

Run from the repository root with Pillow, numpy and tensorflow-cpu installed:
    python3 tests/images/gen.py
It writes tests/images/src/ (small PNG and JPEG files of odd sizes, corrupt and truncated
files, decompression bombs), tests/images/expect/*.npz (expected arrays) and
tests/images/cases.json (which input, op and arguments each expected array belongs to).
The Rust tests (crates/tensor/tests/images_tf.rs) and the run cases read only these files,
so CI needs none of the Python packages.
"""
import io
import json
import os
import pathlib
import struct
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src"
EXPECT = HERE / "expect"
rng = np.random.default_rng(17)


def photo(h, w, c):
    """A smooth picture with some texture: what JPEG is made for, in odd sizes."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [
        128 + 100 * np.sin(x / 3.1 + k) * np.cos(y / 4.7 - k) + rng.normal(0, 12, (h, w))
        for k in range(c)
    ]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_sources():
    SRC.mkdir(parents=True, exist_ok=True)
    files = {}
    # PNGs: every colour type PIL writes.
    files["rgb_7x5.png"] = Image.fromarray(photo(7, 5, 3), "RGB")
    files["gray_9x4.png"] = Image.fromarray(photo(9, 4, 1)[..., 0], "L")
    files["rgba_6x7.png"] = Image.fromarray(photo(6, 7, 4), "RGBA")
    files["la_5x3.png"] = Image.fromarray(photo(5, 3, 2), "LA")
    pal = Image.fromarray(photo(8, 3, 3), "RGB").convert("P", palette=Image.ADAPTIVE, colors=6)
    files["palette_8x3.png"] = pal
    files["bits1_11x3.png"] = Image.fromarray(photo(3, 11, 1)[..., 0] > 128).convert("1")
    for name, im in files.items():
        im.save(SRC / name)
    # A palette with a transparent entry (tRNS: expands to RGBA).
    pal.save(SRC / "palette_trns_8x3.png", transparency=2)
    # 16-bit grey and 16-bit RGB, written by hand (PIL writes no 16-bit RGB).
    for name, shape, colour_type in (("gray16_5x3.png", (5, 3), 0), ("rgb16_4x6.png", (4, 6, 3), 2)):
        px = rng.integers(0, 65536, shape).astype(">u2")
        raw = b"".join(b"\x00" + px[r].tobytes() for r in range(shape[0]))
        ihdr = struct.pack(">IIBBBBB", shape[1], shape[0], 16, colour_type, 0, 0, 0)
        png = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
               + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
        (SRC / name).write_bytes(png)
    # JPEGs: chroma 4:2:0 (PIL's default), 4:2:2, 4:4:4, grey, progressive, a bigger one.
    Image.fromarray(photo(17, 33, 3)).save(SRC / "rgb420_17x33.jpg", quality=90)
    Image.fromarray(photo(13, 21, 3)).save(SRC / "rgb422_13x21.jpg", quality=85, subsampling=1)
    Image.fromarray(photo(9, 15, 3)).save(SRC / "rgb444_9x15.jpg", quality=95, subsampling=0)
    Image.fromarray(photo(11, 13, 1)[..., 0], "L").save(SRC / "gray_11x13.jpg", quality=90)
    Image.fromarray(photo(21, 29, 3)).save(SRC / "progressive_21x29.jpg", quality=80, progressive=True)
    Image.fromarray(photo(48, 64, 3)).save(SRC / "rgb_48x64.jpg", quality=75)
    # Broken files: truncated, corrupt, empty, not an image.
    png = (SRC / "rgb_7x5.png").read_bytes()
    (SRC / "truncated.png").write_bytes(png[: len(png) // 2])
    jpg = (SRC / "rgb_48x64.jpg").read_bytes()
    (SRC / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    bad = bytearray(png)
    bad[40] ^= 0xFF  # inside IDAT: the CRC no longer matches
    (SRC / "corrupt.png").write_bytes(bytes(bad))
    (SRC / "not_an_image.png").write_bytes(b"hello, I am text\n")
    # A palette image whose PLTE chunk holds 19 bytes: not whole RGB entries.
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 3, 0, 0, 0))
    plte = png_chunk(b"PLTE", bytes(range(19)))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00\x00\x01\x02\x00\x03\x04\x05"))
    (SRC / "palette_ragged.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + ihdr + plte + idat + png_chunk(b"IEND", b""))
    # Decompression bombs: tiny files declaring huge images.
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
    (SRC / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat + png_chunk(b"IEND", b""))
    small = bytearray((SRC / "rgb444_9x15.jpg").read_bytes())
    sof = small.index(b"\xff\xc0")
    small[sof + 5: sof + 9] = struct.pack(">HH", 65535, 65535)
    (SRC / "bomb.jpg").write_bytes(bytes(small))


def jpeg_tolerance(name, channels):
    """SPEC section 13 asks for 1 on every pixel; pipec's JPEG decoder does libjpeg-turbo's
    arithmetic (ISLOW IDCT, fancy upsampling, table colour conversion), so it is exact."""
    return 0


def decode_cases():
    cases, arrays = [], {}
    pngs = ["rgb_7x5.png", "gray_9x4.png", "rgba_6x7.png", "la_5x3.png", "palette_8x3.png",
            "palette_trns_8x3.png", "bits1_11x3.png", "gray16_5x3.png", "rgb16_4x6.png"]
    jpgs = ["rgb420_17x33.jpg", "rgb422_13x21.jpg", "rgb444_9x15.jpg", "gray_11x13.jpg",
            "progressive_21x29.jpg", "rgb_48x64.jpg"]
    for name in pngs:
        data = (SRC / name).read_bytes()
        for ch in (0, 1, 3, 4):
            out = tf.io.decode_png(data, channels=ch).numpy()
            if ch == 4 and tf.io.decode_png(data).shape[-1] in (1, 3):
                # TF adds alpha 15, not 255, to palette and 1-bit images without tRNS (a
                # bug); an added alpha is opaque.
                out[..., 3] = 255
            key = f"d{len(cases)}"
            arrays[key] = out
            # Colour to grey is libpng's conversion: within 1; everything else exact.
            grey_from_colour = ch == 1 and name.split("_")[0] in ("rgb", "rgba", "palette", "rgb16")
            cases.append({"file": name, "op": "decode_png", "channels": ch, "expect": key,
                          "oracle": "tf", "tolerance": 1 if grey_from_colour else 0})
    for name in jpgs:
        data = (SRC / name).read_bytes()
        for ch in (0, 1, 3):
            out = tf.io.decode_jpeg(data, channels=ch, dct_method="INTEGER_ACCURATE").numpy()
            key = f"d{len(cases)}"
            arrays[key] = out
            cases.append({"file": name, "op": "decode_jpeg", "channels": ch, "expect": key,
                          "oracle": "tf", "tolerance": jpeg_tolerance(name, ch)})
        # PIL (libjpeg-turbo, ISLOW) as a second oracle, for 0 and 3 channels and RGBA.
        im = Image.open(io.BytesIO(data))
        im.load()
        for ch, mode in ((0, im.mode), (3, "RGB"), (4, "RGBA")):
            out = np.asarray(im.convert(mode))
            if out.ndim == 2:
                out = out[..., None]
            key = f"d{len(cases)}"
            arrays[key] = out
            cases.append({"file": name, "op": "decode_image", "channels": ch, "expect": key,
                          "oracle": "pil", "tolerance": jpeg_tolerance(name, ch)})
    for name, op in [("truncated.png", "decode_png"), ("truncated.jpg", "decode_jpeg"),
                     ("corrupt.png", "decode_png"), ("not_an_image.png", "decode_image"),
                     ("rgb_7x5.png", "decode_jpeg"), ("rgb444_9x15.jpg", "decode_png"),
                     ("bomb.png", "decode_png"), ("bomb.jpg", "decode_jpeg"),
                     ("palette_ragged.png", "decode_png")]:
        cases.append({"file": name, "op": op, "channels": 0, "expect": None, "oracle": "error"})
    np.savez(EXPECT / "decode.npz", **arrays)
    return cases


def resize_cases():
    cases, arrays = [], {}
    inputs = {
        "u8_rgb_7x5": photo(7, 5, 3),
        "u8_rgba_37x23": photo(37, 23, 4),
        "f32_gray_9x6": (rng.random((9, 6, 1)) * 255).astype(np.float32),
        "u16_2ch_5x5": rng.integers(0, 65535, (5, 5, 2)).astype(np.uint16),
        "u8_batch_2x6x7x3": photo(12, 7, 3).reshape(2, 6, 7, 3),
        "i32_1x1": np.array([[[7, -3]]], np.int32),
    }
    sizes = {
        "u8_rgb_7x5": [[3, 4], [11, 13], [7, 5], [4, 9], [1, 1]],
        "u8_rgba_37x23": [[16, 16], [50, 41], [5, 3]],
        "f32_gray_9x6": [[5, 10], [18, 3]],
        "u16_2ch_5x5": [[3, 8]],
        "u8_batch_2x6x7x3": [[3, 5], [9, 10]],
        "i32_1x1": [[3, 2]],
    }
    for name, x in inputs.items():
        arrays["in_" + name] = x
        for size in sizes[name]:
            for method in ("bilinear", "nearest", "area", "bicubic"):
                for antialias in (False, True):
                    out = tf.image.resize(x, size, method=method, antialias=antialias).numpy()
                    key = f"r{len(cases)}"
                    arrays[key] = out
                    cases.append({"input": "in_" + name, "size": size, "method": method,
                                  "antialias": antialias, "expect": key})
    np.savez(EXPECT / "resize.npz", **arrays)
    return cases




def run_cases():
    """Inputs and TF's outputs for the run cases tests/cases/run/image_*.pipe (their
    `# numpy:` lines print these arrays)."""
    run = HERE / "run"
    run.mkdir(exist_ok=True)
    u8 = photo(18, 7, 3).reshape(3, 6, 7, 3)
    f32 = (rng.integers(0, 9, (2, 5, 4, 3)) / 8).astype(np.float32)
    np.save(run / "imgs_u8.npy", u8)
    np.save(run / "imgs_f32.npy", f32)
    out = {}
    q = lambda x: np.round(np.asarray(x) * 16) / 16  # what the run case prints
    out["resize"] = [
        (q(tf.image.resize(x, [3, 4])), tf.image.resize(x, [9, 5], method="nearest").numpy(),
         q(tf.image.resize(x, [4, 4], method="area")),
         q(tf.image.resize(x, [5, 9], method="bicubic")),
         q(tf.image.resize(x, [2, 3], method="bilinear", antialias=True)))
        for x in u8
    ]
    out["ops_u8"] = [
        (tf.image.crop_to_bounding_box(x, i, i, 4, 5).numpy(),
         tf.image.flip_left_right(x).numpy(), tf.image.flip_up_down(x).numpy(),
         tf.image.rgb_to_grayscale(x).numpy(), tf.image.adjust_brightness(x, 0.2).numpy(),
         tf.image.adjust_contrast(x, 1.5).numpy())
        for i, x in enumerate(u8)
    ]
    out["ops_f32"] = [
        (tf.image.flip_left_right(x).numpy(), tf.image.adjust_brightness(x, -0.25).numpy(),
         tf.image.adjust_contrast(x, 2.0).numpy(), tf.image.rgb_to_grayscale(x).numpy())
        for x in f32
    ]
    for name, elems in out.items():
        for k in range(len(elems[0])):
            np.save(run / f"{name}_{k}.npy", np.stack([np.asarray(e[k]) for e in elems]))


def image_folder_example():
    """examples/data/photos/{cat,dog}/*.png (odd sizes) and TF's output for
    examples/image_folder.pipe, saved for its `# numpy:` line."""
    root = HERE.parent.parent / "examples" / "data" / "photos"
    sizes = {"cat": [(12, 10), (11, 13)], "dog": [(10, 12), (13, 11), (12, 12)]}
    for label, shapes in sizes.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for k, (h, w) in enumerate(shapes):
            Image.fromarray(photo(h, w, 3)).save(root / label / f"{label}{k}.png")
    paths = sorted(str(p.relative_to(root.parent.parent)) for p in root.glob("*/*.png"))
    classes = ["cat", "dog"]
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    xs, ys = [], []
    for p in paths:
        img = tf.io.decode_png((root.parent.parent / p).read_bytes(), channels=3)
        img = tf.image.crop_to_bounding_box(img, 1, 1, 8, 8)
        img = tf.image.flip_left_right(img)
        x = tf.image.resize(img, [2, 2]) / 255.0
        xs.append(((x - mean) / std).numpy())
        ys.append(classes.index(p.split("/")[-2]))
    np.save(root / "expect_x.npy", np.stack(xs))
    np.save(root / "expect_y.npy", np.array(ys, np.int64))


def main():
    EXPECT.mkdir(parents=True, exist_ok=True)
    write_sources()
    cases = {"decode": decode_cases(), "resize": resize_cases()}
    (HERE / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    run_cases()
    image_folder_example()
    print(f"{len(cases['decode'])} decode cases, {len(cases['resize'])} resize cases")


if __name__ == "__main__":
    main()
