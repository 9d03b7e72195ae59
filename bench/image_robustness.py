"""How well listing photos are matched to reference photos, edit by edit.

    pip install scikit-image scikit-learn   # sample photos ship inside them: no download
    python bench/image_robustness.py

References: real photographs shipped with scikit-image and scikit-learn. Queries:
each reference after each edit counterfeiters make (resize, recompress, crop, mirror,
pad, watermark, recolour, tilt), and unrelated photos (the other shipped photos and
patches of large ones, each edited the same ways). Printed, per edit:

- plain: the match rate of plain ``imagehash.phash`` at its usual threshold
  (Hamming distance <= 10), one hash per image;
- cfmon: the match rate of cfmon's image matcher at its configured default;
- TPR@FPR<=0.1%: for each method, the true-positive rate at the strictest threshold
  whose false-positive rate over all unrelated (query, reference) pairs is <= 0.1%.
"""

from __future__ import annotations

import io
import random
import sys
import time
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matchers.images import ReferenceIndex, analyse_image, decode  # noqa: E402

PLAIN_THRESHOLD = 10


def photos() -> dict[str, Image.Image]:
    try:
        from skimage import data
    except ImportError:
        sys.exit("needs scikit-image (pip install scikit-image): its sample photos are the data")
    names = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "horse",
             "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel",
             "colorwheel", "clock", "page", "text"]
    out = {}
    for name in names:
        array = getattr(data, name)()
        image = Image.fromarray(array)
        out[name] = image.convert("RGB")
    try:
        from sklearn.datasets import load_sample_images

        for i, array in enumerate(load_sample_images().images):
            out[f"sklearn-{i}"] = Image.fromarray(array).convert("RGB")
    except ImportError:
        pass
    return out


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def edits(rnd: random.Random) -> dict[str, callable]:
    def crop(im: Image.Image) -> Image.Image:
        w, h = im.size
        f = rnd.uniform(0.08, 0.15)
        left, top = int(w * rnd.uniform(0, f)), int(h * rnd.uniform(0, f))
        return im.crop((left, top, left + int(w * (1 - f)), top + int(h * (1 - f))))

    def pad(im: Image.Image) -> Image.Image:
        w, h = im.size
        side = max(w, h) + int(max(w, h) * 0.25)
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        return canvas

    def watermark(im: Image.Image) -> Image.Image:
        out = im.convert("RGBA")
        layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        w, h = out.size
        for y in range(h // 6, h, h // 3):
            d.text((w // 10, y), "BEST PRICE  www.shop-deals.example", fill=(255, 255, 255, 150))
        d.rectangle([w - w // 4, h - h // 8, w, h], fill=(255, 0, 0, 160))
        return Image.alpha_composite(out, layer).convert("RGB")

    def recolour(im: Image.Image) -> Image.Image:
        hsv = np.array(im.convert("HSV"))
        hsv[..., 0] = (hsv[..., 0].astype(int) + 40) % 256
        out = Image.fromarray(hsv, "HSV").convert("RGB")
        return ImageEnhance.Contrast(ImageEnhance.Brightness(out).enhance(1.1)).enhance(1.15)

    def tilt(im: Image.Image) -> Image.Image:
        return im.rotate(rnd.choice([-5, -3, 3, 5]), resample=Image.BICUBIC, expand=True,
                         fillcolor=(255, 255, 255))

    return {
        "resize": lambda im: im.resize((im.width // 2, im.height // 2)),
        "recompress": lambda im: Image.open(io.BytesIO(jpeg(im, 25))),
        "crop": crop,
        "mirror": ImageOps.mirror,
        "pad": pad,
        "watermark": watermark,
        "recolour": recolour,
        "tilt": tilt,
        "grey": lambda im: ImageOps.grayscale(im).convert("RGB"),
    }


def plain_hash(data: bytes) -> int:
    return int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)


def main() -> None:
    rnd = random.Random(7)
    images = photos()
    names = sorted(images)
    references = names[: len(names) // 2]
    unrelated = names[len(names) // 2:]
    # More unrelated photos: patches of the large unrelated ones.
    patches = {}
    for name in unrelated:
        im = images[name]
        for k in range(6):
            w, h = im.size
            s = int(min(w, h) * rnd.uniform(0.4, 0.7))
            x, y = rnd.randint(0, w - s), rnd.randint(0, h - s)
            patches[f"{name}-patch{k}"] = im.crop((x, y, x + s, y + s))
    negatives = {**{n: images[n] for n in unrelated}, **patches}
    edit_fns = edits(rnd)

    ref_bytes = {n: jpeg(images[n], 92) for n in references}
    index = ReferenceIndex.from_photos([(n, io.BytesIO(b)) for n, b in ref_bytes.items()])
    plain_refs = np.array([plain_hash(b) for b in ref_bytes.values()], dtype=np.uint64)

    def plain_distances(data: bytes) -> np.ndarray:
        return np.bitwise_count(plain_refs ^ np.uint64(plain_hash(data)))

    started = time.perf_counter()
    rows = []
    neg_plain, neg_cfmon = [], []
    for edit_name, fn in [("none", lambda im: im), *edit_fns.items()]:
        pos_plain, pos_cfmon, hits_plain, hits_cfmon = [], [], 0, 0
        for n in references:
            data = jpeg(fn(images[n]), 80)
            pd = plain_distances(data)
            own = references.index(n)
            pos_plain.append(int(pd[own]))
            hits_plain += int(pd.min() <= PLAIN_THRESHOLD and pd.argmin() == own)
            match = index.nearest_variants(analyse_image(data).variants)
            pos_cfmon.append(match.score if match.reference.product == n else 10**6)
            hits_cfmon += int(match.reference.product == n and match.accepted)
        for im in negatives.values():
            data = jpeg(fn(im), 80)
            neg_plain.extend(int(d) for d in plain_distances(data))
            neg_cfmon.append(index.nearest_variants(analyse_image(data).variants))
        rows.append((edit_name, hits_plain / len(references), hits_cfmon / len(references),
                     pos_plain, pos_cfmon))
    elapsed = time.perf_counter() - started

    # Strictest thresholds keeping the false-positive rate over unrelated pairs <= 0.1%.
    neg_plain_sorted = np.sort(np.array(neg_plain))
    allowed = int(len(neg_plain_sorted) * 0.001)
    plain_cut = neg_plain_sorted[allowed] - 1  # distances <= cut count as matches
    cfmon_scores = np.sort(np.array([m.score for m in neg_cfmon]))
    cfmon_allowed = int(len(cfmon_scores) * 0.001)
    cfmon_cut = cfmon_scores[cfmon_allowed] - 1
    false_flags = sum(m.accepted for m in neg_cfmon)

    print(f"{len(references)} reference photos, {len(negatives)} unrelated photos x "
          f"{len(rows)} edits ({len(neg_plain)} unrelated pairs for plain pHash, "
          f"{len(neg_cfmon)} unrelated queries for cfmon); {elapsed:.1f}s\n")
    print(f"{'edit':<11}{'plain@10':>10}{'cfmon':>8}{'plain TPR@FPR<=0.1%':>22}"
          f"{'cfmon TPR@FPR<=0.1%':>22}")
    for edit_name, plain_rate, cfmon_rate, pos_plain, pos_cfmon in rows:
        tpr_plain = np.mean(np.array(pos_plain) <= plain_cut)
        tpr_cfmon = np.mean(np.array(pos_cfmon) <= cfmon_cut)
        print(f"{edit_name:<11}{plain_rate:>10.2f}{cfmon_rate:>8.2f}{tpr_plain:>22.2f}"
              f"{tpr_cfmon:>22.2f}")
    print(f"\nunrelated photos matched at the defaults: plain pHash "
          f"{np.mean(np.array(neg_plain) <= PLAIN_THRESHOLD) * 100:.2f}% of pairs, "
          f"cfmon {false_flags}/{len(neg_cfmon)} queries")
    print(f"thresholds at FPR <= 0.1%: plain pHash distance <= {plain_cut}, "
          f"cfmon score <= {cfmon_cut}")


def draft_decoding(images: dict[str, Image.Image]) -> None:
    """JPEG draft mode against a full decode: speed, and pHash bits it changes."""
    blobs = [jpeg(im.resize((im.width * 2, im.height * 2)), 90) for im in images.values()]

    def full(data: bytes) -> int:
        return int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)

    def draft(data: bytes) -> int:
        return int(str(imagehash.phash(decode(data))), 16)

    timings = {}
    for name, fn in (("full decode", full), ("draft decode", draft)):
        started = time.perf_counter()
        for _ in range(3):
            hashes = [fn(b) for b in blobs]
        timings[name] = (time.perf_counter() - started, hashes)
    changed = [bin(a ^ b).count("1") for a, b in zip(timings["full decode"][1],
                                                      timings["draft decode"][1], strict=True)]
    ratio = timings["full decode"][0] / timings["draft decode"][0]
    print(f"\npHash of {len(blobs)} JPEGs (2x upscaled photos): draft decoding {ratio:.1f}x "
          f"faster than a full decode; pHash bits changed by it: mean {np.mean(changed):.1f}, "
          f"max {max(changed)} of 64")


if __name__ == "__main__":
    main()
    draft_decoding(photos())
