"""How well listing photos are matched to reference photos, edit by edit.

    apt-get install tuxpaint-stamps-default   # the photos (Debian)
    pip install -e '.[bench]'                  # albumentations, AugLy, PDQ
    python bench/image_robustness.py                 # figures on the held-out half
    python bench/image_robustness.py --half tune     # the half the defaults were chosen on

Photos: the photographs among Tux Paint's stamps (Debian package
tuxpaint-stamps-default, /usr/share/tuxpaint/stamps): real photos of single objects
(animals, food, tools, instruments, coins, vehicles) cut out on a transparent
background. A photo is taken when it has at least 2,000 colours and is at least 120
px on its long side (drawings have few colours); each is put on a white square with
a margin, the way shops shoot products, so every pair of photos shares background
and framing: the hard case. The photos are split in two halves by a hash of their
file name: the defaults (minimum inliers, candidates, ratio) were chosen on "tune";
the figures are reported on "held-out". In each half, one photo in two is a
reference, the others are unrelated photos.

Edits are made by augmentation libraries, not by cfmon's code: albumentations
(crops, mirror, rotations, padding, perspective, colour, blur, JPEG, downscaling) and
Meta's AugLy, made for copy-detection benchmarks (text, watermark, emoji, meme
caption, a web page or phone app screenshot). Every reference and every unrelated
photo is edited each way; queries are saved as JPEG (quality 85) before matching.

Printed per edit, for cfmon, plain pHash (imagehash, distance <= 10) and PDQ (Meta,
distance <= 31 of 256): the share of edited references matched to their own
reference at the method's default; false matches: unrelated queries matched to any
reference at the default; and the TPR at the strictest threshold whose false-match
rate over unrelated queries is <= 0.1%. The last lines: the time to match one
listing photo against 1,000 reference photos on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matchers import geometry  # noqa: E402
from matchers.images import ImageMatcher, analyse_image  # noqa: E402

STAMPS = Path("/usr/share/tuxpaint/stamps")
SIZE = 400  # reference photos: a 400 px square, as marketplaces show them
PLAIN_THRESHOLD = 10
PDQ_THRESHOLD = 31


def load_photos(root: Path) -> dict[str, Image.Image]:
    if not root.is_dir():
        sys.exit(f"no photos at {root}: apt-get install tuxpaint-stamps-default "
                 "(or --photos DIR of PNGs with transparency)")
    out = {}
    for path in sorted(root.rglob("*.png")):
        image = Image.open(path).convert("RGBA")
        if max(image.size) < 120:
            continue
        pixels = np.asarray(image)
        opaque = pixels[..., 3] > 200
        colours = np.unique(pixels[opaque][:, :3].astype(np.uint32)
                            @ np.array([65536, 256, 1], dtype=np.uint32))
        if len(colours) < 2000:
            continue
        box = image.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
        if box is None:
            continue
        image = image.crop(box)
        side = int(max(image.size) * 1.16)
        canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        canvas.alpha_composite(image, ((side - image.width) // 2, (side - image.height) // 2))
        out[str(path.relative_to(root))] = canvas.convert("RGB").resize((SIZE, SIZE),
                                                                        Image.LANCZOS)
    return out


def half_of(name: str) -> str:
    return "tune" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "held-out"


def role_of(name: str) -> str:
    return "reference" if hashlib.sha256(name.encode()).digest()[1] % 2 == 0 else "unrelated"


def _augly_for_current_pillow() -> None:
    # AugLy 1.0 (2022) calls FreeTypeFont.getsize_multiline, removed in Pillow 10: the
    # same measure from multiline_textbbox, so that its meme edit runs unchanged.
    if not hasattr(ImageFont.FreeTypeFont, "getsize_multiline"):
        def getsize_multiline(self, text, *args, **kwargs):
            box = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox((0, 0), text,
                                                                           font=self)
            return box[2] - box[0], box[3] - box[1]
        ImageFont.FreeTypeFont.getsize_multiline = getsize_multiline


Edit = Callable[[Image.Image, random.Random], Image.Image]


def edits() -> dict[str, Edit]:
    try:
        import albumentations as A
        import augly.image as imaugs
        import augly.utils as augly_utils
        import cv2
    except ImportError:
        sys.exit("needs the bench extra: pip install -e '.[bench]'")
    _augly_for_current_pillow()
    emojis = sorted(Path(augly_utils.EMOJI_DIR).rglob("*.png"))
    templates = Path(augly_utils.SCREENSHOT_TEMPLATES_DIR)
    white = (255, 255, 255)

    def albu(transform) -> Edit:
        def run(image: Image.Image, rnd: random.Random) -> Image.Image:
            pipeline = A.Compose([transform], seed=rnd.randrange(2**31))
            return Image.fromarray(pipeline(image=np.asarray(image))["image"])
        return run

    def crop(share: float) -> Edit:
        def run(image: Image.Image, rnd: random.Random) -> Image.Image:
            w, h = image.size
            cw, ch = int(w * (1 - share)), int(h * (1 - share))
            x, y = rnd.randint(0, w - cw), rnd.randint(0, h - ch)
            return albu(A.Crop(x_min=x, y_min=y, x_max=x + cw, y_max=y + ch))(image, rnd)
        return run

    def rotate(degrees: float) -> Edit:
        def run(image: Image.Image, rnd: random.Random) -> Image.Image:
            angle = degrees * rnd.choice((-1, 1))
            return albu(A.Rotate(limit=(angle, angle), border_mode=cv2.BORDER_CONSTANT,
                                 fill=white, p=1))(image, rnd)
        return run

    def pad(image: Image.Image, rnd: random.Random) -> Image.Image:
        w = image.width
        grey = rnd.randint(232, 250)
        return albu(A.Pad(padding=int(w * rnd.uniform(0.1, 0.25)), fill=(grey, grey, grey - 4),
                          border_mode=cv2.BORDER_CONSTANT))(image, rnd)

    def text(image: Image.Image, rnd: random.Random) -> Image.Image:
        return imaugs.overlay_text(image, text=[rnd.randrange(1000) for _ in range(12)],
                                   font_size=0.12, opacity=1.0, color=(220, 0, 0),
                                   x_pos=rnd.uniform(0, 0.3), y_pos=rnd.uniform(0.05, 0.8))

    def watermark(image: Image.Image, rnd: random.Random) -> Image.Image:
        return imaugs.overlay_text(image, text=[rnd.randrange(1000) for _ in range(20)],
                                   font_size=0.1, opacity=0.45, color=(128, 128, 128),
                                   x_pos=0.0, y_pos=rnd.uniform(0.3, 0.6))

    def emoji(image: Image.Image, rnd: random.Random) -> Image.Image:
        for _ in range(2):
            image = imaugs.overlay_emoji(image, emoji_path=str(rnd.choice(emojis)),
                                         emoji_size=rnd.uniform(0.15, 0.25),
                                         x_pos=rnd.uniform(0, 0.75), y_pos=rnd.uniform(0, 0.75))
        return image.convert("RGB")

    def meme(image: Image.Image, rnd: random.Random) -> Image.Image:
        words = rnd.choice(["WHEN THE PRICE IS RIGHT", "ME AFTER PAYDAY", "NOT A FAKE",
                            "BEST DEAL EVER"])
        return imaugs.meme_format(image, text=words,
                                  caption_height=int(image.height * rnd.uniform(0.2, 0.35)))

    def screenshot(template: str) -> Edit:
        def run(image: Image.Image, rnd: random.Random) -> Image.Image:
            return imaugs.overlay_onto_screenshot(
                image, template_filepath=str(templates / template),
                template_bboxes_filepath=str(templates / "bboxes.json")).convert("RGB")
        return run

    single: dict[str, Edit] = {
        "crop 5%": crop(0.05),
        "crop 10%": crop(0.10),
        "crop 20%": crop(0.20),
        "mirror": albu(A.HorizontalFlip(p=1)),
        "rotate 3": rotate(3),
        "rotate 6": rotate(6),
        "rotate 10": rotate(10),
        "pad": pad,
        "text": text,
        "watermark": watermark,
        "emoji": emoji,
        "meme": meme,
        "screenshot web": screenshot("web.png"),
        "screenshot app": screenshot("mobile.png"),
        "perspective": albu(A.Perspective(scale=(0.05, 0.1), fit_output=True, fill=white,
                                          p=1)),
        "colour": albu(A.ColorJitter(brightness=(0.7, 1.3), contrast=(0.7, 1.3),
                                     saturation=(0.5, 1.5), hue=(0, 0), p=1)),
        "blur": albu(A.GaussianBlur(sigma_limit=(1.5, 2.0), p=1)),
        "jpeg 20": albu(A.ImageCompression(quality_range=(20, 20), p=1)),
        "downscale": albu(A.Resize(height=160, width=160)),
    }

    def combined(image: Image.Image, rnd: random.Random) -> Image.Image:
        first, second = rnd.sample(sorted(single), 2)
        return single[second](single[first](image, rnd), rnd)

    return {**single, "two combined": combined}


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class Plain:
    """imagehash.phash, one hash per image."""

    name, default = "pHash", PLAIN_THRESHOLD

    def __init__(self, references: dict[str, bytes]):
        self.names = list(references)
        self.hashes = np.array([self.hash(b) for b in references.values()], dtype=np.uint64)

    @staticmethod
    def hash(data: bytes) -> int:
        import imagehash
        return int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)

    def nearest(self, data: bytes) -> tuple[str, float]:
        d = np.bitwise_count(self.hashes ^ np.uint64(self.hash(data)))
        i = int(np.argmin(d))
        return self.names[i], float(d[i])


class Pdq:
    """Meta's PDQ (pdqhash), 256 bits."""

    name, default = "PDQ", PDQ_THRESHOLD

    def __init__(self, references: dict[str, bytes]):
        import pdqhash
        self._pdq = pdqhash
        self.names = list(references)
        self.hashes = np.array([self.hash(b) for b in references.values()])

    def hash(self, data: bytes) -> np.ndarray:
        bits, _quality = self._pdq.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        return bits.astype(bool)

    def nearest(self, data: bytes) -> tuple[str, float]:
        d = (self.hashes != self.hash(data)).sum(axis=1)
        i = int(np.argmin(d))
        return self.names[i], float(d[i])


class Cfmon:
    """cfmon's matcher: hashes propose, geometry decides (score: agreeing keypoints)."""

    name, default = "cfmon", geometry.MIN_INLIERS

    def __init__(self, references: dict[str, bytes]):
        self.matcher = ImageMatcher.from_photos(
            [(name, io.BytesIO(data)) for name, data in references.items()])

    def best(self, data: bytes) -> tuple[str | None, float]:
        # Every candidate with at least 4 agreeing keypoints, to sweep the threshold;
        # cfmon's default accepts MIN_INLIERS and more.
        found = self.matcher.verify(analyse_image(data), min_inliers=4)
        if not found:
            return None, 0.0
        return found[0].product, float(found[0].inliers)


def threshold_at(negatives: list[float], higher_is_match: bool, rate: float = 0.001) -> float:
    """The strictest-needed threshold letting at most ``rate`` of negatives match."""
    allowed = int(len(negatives) * rate)
    ordered = sorted(negatives, reverse=higher_is_match)
    if allowed >= len(ordered):
        return -np.inf if higher_is_match else np.inf
    edge = ordered[allowed]
    return edge + 1e-9 if higher_is_match else edge - 1e-9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--half", choices=["tune", "held-out"], default="held-out")
    parser.add_argument("--photos", type=Path, default=STAMPS)
    parser.add_argument("--kinds", help="comma-separated edit names (default: all)")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    try:
        import cv2
        cv2.setNumThreads(1)  # figures for one core
    except ImportError:
        pass

    photos = load_photos(args.photos)
    mine = {n: im for n, im in photos.items() if half_of(n) == args.half}
    references = {n: jpeg(im, 92) for n, im in mine.items() if role_of(n) == "reference"}
    unrelated = {n: im for n, im in mine.items() if role_of(n) == "unrelated"}
    kinds = edits()
    if args.kinds:
        kinds = {k: kinds[k] for k in args.kinds.split(",")}
    started = time.perf_counter()
    methods = [Cfmon(references), Plain(references)]
    try:
        methods.append(Pdq(references))
    except ImportError:
        print("pdqhash not installed: PDQ left out")

    # positives[method][kind]: (own reference found first, score); negatives: best score
    positives: dict[str, dict[str, list[tuple[bool, float]]]] = {m.name: {} for m in methods}
    negatives: dict[str, dict[str, list[float]]] = {m.name: {} for m in methods}
    for kind, edit in kinds.items():
        for label, source in (("pos", references), ("neg", unrelated)):
            for name in source:
                rnd = random.Random(f"{kind}/{name}")
                image = photos[name]
                data = jpeg(edit(image, rnd))
                for method in methods:
                    if method.name == "cfmon":
                        found, score = method.best(data)
                    else:
                        found, score = method.nearest(data)
                    if label == "pos":
                        positives[method.name].setdefault(kind, []).append((found == name, score))
                    else:
                        negatives[method.name].setdefault(kind, []).append(score)
    elapsed = time.perf_counter() - started

    higher = {"cfmon": True, "pHash": False, "PDQ": False}

    def matched(method, score: float, threshold: float) -> bool:
        return score >= threshold if higher[method.name] else score <= threshold

    names = [m.name for m in methods]
    print(f"{args.half} half: {len(references)} reference photos, {len(unrelated)} unrelated "
          f"photos, {len(kinds)} edits ({len(references) * len(kinds)} edited copies, "
          f"{len(unrelated) * len(kinds)} unrelated queries); {elapsed:.0f}s\n")
    cuts = {}
    for method in methods:
        every = [s for scores in negatives[method.name].values() for s in scores]
        cuts[method.name] = threshold_at(every, higher[method.name])
    header = "".join(f"{n + ' TPR':>11}" for n in names) + \
        "".join(f"{n + ' @0.1%':>13}" for n in names) + \
        "".join(f"{n + ' FP':>10}" for n in names)
    print(f"{'edit':<16}{header}")
    totals = {n: [0, 0, 0, 0, 0] for n in names}  # tp, n, fp, negatives, tp at cut
    for kind in kinds:
        cells_tpr, cells_cut, cells_fp = [], [], []
        for method in methods:
            pos = positives[method.name][kind]
            neg = negatives[method.name][kind]
            tp = sum(own and matched(method, s, method.default) for own, s in pos)
            tp_cut = sum(own and matched(method, s, cuts[method.name]) for own, s in pos)
            fp = sum(matched(method, s, method.default) for s in neg)
            t = totals[method.name]
            t[0] += tp
            t[1] += len(pos)
            t[2] += fp
            t[3] += len(neg)
            t[4] += tp_cut
            cells_tpr.append(f"{tp / len(pos):>11.2f}")
            cells_cut.append(f"{tp_cut / len(pos):>13.2f}")
            cells_fp.append(f"{fp:>10d}")
        print(f"{kind:<16}{''.join(cells_tpr)}{''.join(cells_cut)}{''.join(cells_fp)}")
    print()
    for name in names:
        tp, n, fp, nn, tp_cut = totals[name]
        print(f"{name:<6} at its default: TPR {tp / n:.3f} over all edits, false matches "
              f"{fp}/{nn} unrelated queries ({fp / nn:.2%}); TPR at FPR <= 0.1%: {tp_cut / n:.3f}")
    if not args.no_timing:
        timing(photos)


def timing(photos: dict[str, Image.Image], n_refs: int = 1000) -> None:
    """One listing photo against 1,000 reference photos: the photos and recoloured,
    rotated copies of them stand in for a catalog that large."""
    rnd = random.Random(3)
    base = list(photos.values())
    catalog = {}
    i = 0
    while len(catalog) < n_refs:
        image = base[i % len(base)]
        turn = i // len(base)
        if turn:
            image = ImageOps.mirror(image) if turn % 2 else image
            image = image.rotate(90 * turn, fillcolor=(255, 255, 255))
        catalog[f"ref-{i}"] = jpeg(image, 92)
        i += 1
    matcher = ImageMatcher.from_photos([(n, io.BytesIO(b)) for n, b in catalog.items()])
    queries = [jpeg(base[rnd.randrange(len(base))].rotate(5, fillcolor=(255, 255, 255)))
               for _ in range(60)]
    analyses, analyse_ms, match_ms = [], [], []
    for data in queries:
        t = time.perf_counter()
        analyses.append(analyse_image(data))
        analyse_ms.append((time.perf_counter() - t) * 1000)
    for analysis in analyses:
        t = time.perf_counter()
        matcher.match(analysis)
        match_ms.append((time.perf_counter() - t) * 1000)
    print(f"\none listing photo against {len(matcher)} reference photos, one core: match "
          f"{statistics.median(match_ms):.1f} ms (median; p90 "
          f"{np.percentile(match_ms, 90):.1f}), analysis of the photo (decode, hashes, "
          f"keypoints, thumbnail) {statistics.median(analyse_ms):.1f} ms")


if __name__ == "__main__":
    main()
