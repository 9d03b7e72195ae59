"""Listing photos against reference photos: hashes propose, geometry decides.

Hashes (both from imagehash, on one decode of the image):
- pHash: DCT of a 32x32 greyscale image, top-left 8x8 coefficients against their
  median (Zauner, "Implementation and Benchmarking of Perceptual Image Hash
  Functions", 2010; http://www.hackerfactor.com/blog/index.php?/archives/432-Looks-Like-It.html).
- dHash: signs of horizontal gradients on a 9x8 greyscale image (Krawetz,
  http://www.hackerfactor.com/blog/index.php?/archives/529-Kind-of-Like-That.html).

Hashes are kept as unsigned 64-bit integers (hex in the database), never as
``ImageHash`` objects, and compared with a vectorized popcount of XOR against every
reference at once. Each reference photo is hashed as it is and mirrored, whole,
without its plain margin, cut at five anchors, its centre and its centre tilted; each
listing photo as it is, with uniform borders trimmed, and its centre; and each part
of it that looks like a photo of its own (``photo_parts``: a product photo inside a
screenshot or under a meme caption). A 12x12 colour "tiny image" adds candidates the
grey hashes miss.

No distance is a match: the closest reference photos are only candidates, and
``ImageMatcher`` accepts one when ``matchers.geometry`` finds its keypoints and pixels
in the listing photo. Photos of confirmed counterfeits (``ReferenceIndex`` alone,
``crawler.catalog.known_counterfeits``) are the exception: a re-listing shows the same
photo again, within a few bits.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import cv2
import imagehash
import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from matchers.geometry import (
    CHROMA,
    CONFIRM_INLIERS,
    MIN_AGREEMENT,
    MIN_INLIERS,
    N_FEATURES,
    SMALL,
    STRONG_AGREEMENT,
    WORKING_SIZE,
    Features,
    Verification,
    features,
    verify,
)

THUMBNAIL_SIZE = (240, 240)
THUMBNAIL_MAX_BYTES = 100_000
# Decoding at reduced scale (JPEG draft mode) is several times faster and leaves the
# 32x32 pHash input practically unchanged; 256 px keeps thumbnails sharp.
_DRAFT_SIZE = (256, 256)


class ImageError(ValueError):
    """Bytes that are not a readable image (corrupt, truncated, not an image, a bomb)."""


@dataclass(frozen=True)
class ImageHashes:
    phash: int
    dhash: int

    def hex(self) -> tuple[str, str]:
        return f"{self.phash:016x}", f"{self.dhash:016x}"

    @classmethod
    def from_hex(cls, phash: str, dhash: str) -> ImageHashes:
        return cls(int(phash, 16), int(dhash, 16))


@dataclass(frozen=True)
class ImageAnalysis:
    sha256: str
    width: int
    height: int
    hashes: ImageHashes  # of the whole image (stored in the database)
    thumbnail: bytes  # JPEG, at most THUMBNAIL_MAX_BYTES
    # Query variants: "full", and when they differ "trimmed" and "center".
    variants: dict[str, ImageHashes] = field(default_factory=dict)
    # Keypoints for geometric verification; None for an image hashed by an earlier
    # crawl (its verified match is stored instead).
    features: Features | None = None
    tiny: np.ndarray | None = None  # see tiny()
    # Parts of the photo that look like a photo of their own (a product photo inside a
    # screenshot, under a meme caption), each with its hashes and keypoints.
    parts: tuple[Part, ...] = ()
    # The reference photo it was verified to show, and the catalog it was checked
    # against (ImageMatcher.key); set by the images pipeline, stored with the image.
    match: PhotoMatch | None = None
    match_key: str | None = None


@dataclass(frozen=True)
class Part:
    box: tuple[float, float, float, float]  # shares of the photo's width and height
    variants: dict[str, ImageHashes]
    features: Features
    tiny: np.ndarray  # see tiny()


def _to_int(value: imagehash.ImageHash) -> int:
    """The hash's bits as one integer, first bit highest (as ``int(str(value), 16)``,
    without the string)."""
    return int.from_bytes(np.packbits(value.hash.ravel()).tobytes(), "big")


# Pixels decoded at most (after JPEG draft scaling, which makes large JPEGs cheap): a
# 250 KB PNG can claim 9000x9000 pixels, about 1 GB once decoded and converted. Checked
# from the header, before anything is decoded.
MAX_PIXELS = 8_000_000


def decode(data: bytes, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """Decode image bytes to RGB at reduced scale; ImageError when they are not an image
    or are larger than ``max_pixels`` (None: the brand's own reference photos, trusted
    and analysed once, up to Pillow's decompression-bomb limit)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", _DRAFT_SIZE)
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageError(f"image too large to analyse: {width}x{height} pixels "
                                 f"(at most {max_pixels // 1_000_000} megapixels)")
            image = ImageOps.exif_transpose(image)
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:  # (Pillow's message names only its BytesIO object)
        raise ImageError("not a readable image: no image format Pillow knows "
                         f"(the data starts {data[:12]!r})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageError(f"not a readable image: {exc}") from None
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def hash_decoded(image: Image.Image) -> ImageHashes:
    return _hash_grey(image.convert("L"))


def _hash_grey(grey: Image.Image) -> ImageHashes:
    return ImageHashes(phash=_to_int(imagehash.phash(_reduced(grey, 32, 4))),
                       dhash=_to_int(imagehash.dhash(_reduced(grey, 9, 8))))


def _reduced(grey: Image.Image, size: int, gap: int) -> Image.Image:
    """``grey`` box-reduced by a whole factor to no less than ``gap`` times ``size``,
    for imagehash's Lanczos resize to ``size``: a Lanczos kernel over a 400-pixel photo
    is most of a hash's cost (Pillow's own ``reducing_gap`` idea). On 522 demo, fixture
    and Tux Paint photos, against the hashes of the photo as it is: pHash from 4x the
    same on 483 and within 2 bits on 520; dHash, more sensitive, from 8x within a bit
    or two."""
    factor = min(grey.width, grey.height) // (size * gap)
    return grey.reduce(factor) if factor >= 2 else grey


CENTER = 0.8  # share of width and height kept by the "center" variant
TILTS = (-4.0, 4.0)  # degrees; tilted references catch photos turned a few degrees


@functools.cache
def _threshold(tolerance: int) -> list[int]:
    # a lookup table for Image.point, built once: a lambda is called 256 times a photo
    return [255 if v > tolerance else 0 for v in range(256)]


def trim_borders(image: Image.Image, tolerance: int = 12) -> Image.Image:
    """The image without uniform borders (padding, letterboxing) of its corner colour."""
    box = _trim_box(image, tolerance)
    return image if box is None else image.crop(box)


def _trim_box(image: Image.Image, tolerance: int = 12) -> tuple[int, int, int, int] | None:
    corner = image.getpixel((0, 0))
    background = Image.new(image.mode, image.size, corner)
    diff = ImageChops.difference(image, background).convert("L")
    box = diff.point(_threshold(tolerance)).getbbox()
    if not box:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    if w < image.width * 0.3 or h < image.height * 0.3:
        return None  # the "border" is most of the photo: not padding
    return box


def center(image: Image.Image, share: float = CENTER) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * (1 - share) / 2), int(h * (1 - share) / 2)
    return image.crop((dx, dy, w - dx, h - dy))


CROP_SHARES = (0.9, 0.85)  # cropped references: what a listing photo cut from it shows


def crops(image: Image.Image) -> Iterator[Image.Image]:
    """The image cut to each share, at its centre and at each corner."""
    w, h = image.size
    for share in CROP_SHARES:
        cw, ch = int(w * share), int(h * share)
        for x, y in ((w - cw) // 2, (h - ch) // 2), (0, 0), (w - cw, 0), (0, h - ch), \
                (w - cw, h - ch):
            yield image.crop((x, y, x + cw, y + ch))


def _variants(grey: Image.Image, box: tuple[int, int, int, int] | None) -> dict[str, ImageHashes]:
    # Hashes of the photo, of it without its borders (``box``) and of its centre, from
    # one grey copy: cropping and converting to grey commute.
    variants = {"full": _hash_grey(grey)}
    trimmed = grey if box is None else grey.crop(box)
    if trimmed.size != grey.size:
        variants["trimmed"] = _hash_grey(trimmed)
    variants["center"] = _hash_grey(center(trimmed))
    return variants


def _described(image: Image.Image) -> tuple[dict[str, ImageHashes], Features, np.ndarray]:
    """Hash variants, keypoints and tiny image of ``image``, sharing its grey copy and
    its border box (hash_decoded, features and tiny would each compute them)."""
    grey = image.convert("L")
    box = _trim_box(image)
    return (_variants(grey, box), features(image, grey),
            _tiny(image if box is None else image.crop(box)))


def photo_parts(image: Image.Image, limit: int = 3) -> list[tuple[int, int, int, int]]:
    """Boxes of the regions that may be a photo of their own inside a larger picture
    (a product photo in a screenshot, under a meme caption), largest first.

    Two cues, on the picture at 480 px:
    - frames: closed contours (Canny edges, OpenCV's findContours) that are nearly
      rectangles, as a photo pasted into a page or a post is;
    - texture: a photograph changes brightness softly almost everywhere, where
      interface drawings, text and flat backgrounds change it in a few sharp steps;
      blocks of 8x8 pixels where most steps are soft are joined into connected regions
      (a product cut out on white is found this way, having no frame).
    Regions that are tiny or nearly the whole picture are left out.
    """
    scale = 480 / max(image.size)
    small = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))),
                         Image.BILINEAR)
    grey = np.asarray(small.convert("L"))
    height, width = grey.shape
    if height < 32 or width < 32:
        return []
    boxes: list[tuple[int, tuple[int, int, int, int]]] = []

    def keep(x: int, y: int, w: int, h: int) -> None:
        # A plain box (a letterbox bar, a button) is no photo: it must hold detail.
        if w >= 24 and h >= 24 and 0.005 * width * height <= w * h <= 0.85 * width * height \
                and 0.25 <= w / h <= 4 \
                and grey[y + h // 6:y + h - h // 6, x + w // 6:x + w - w // 6].std() >= 12:
            boxes.append((w * h, (x, y, x + w, y + h)))

    edges = cv2.dilate(cv2.Canny(grey, 40, 120), np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if cv2.contourArea(contour) >= 0.85 * w * h:
            keep(x, y, w, h)

    steps = np.maximum(np.abs(np.diff(grey.astype(np.int16), axis=1))[:-1, :],
                       np.abs(np.diff(grey.astype(np.int16), axis=0))[:, :-1])
    soft = ((steps >= 2) & (steps <= 40)).astype(np.float32)
    block = 8
    bh, bw = soft.shape[0] // block, soft.shape[1] // block
    share = soft[:bh * block, :bw * block].reshape(bh, block, bw, block).mean(axis=(1, 3))
    mask = cv2.morphologyEx((share >= 0.35).astype(np.uint8), cv2.MORPH_CLOSE,
                            np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    for x, y, w, h, _area in stats[1:count]:
        keep(int(x * block), int(y * block), int(w * block), int(h * block))

    # Largest first, without near-duplicates (a frame found twice, inside and outside
    # its edge line).
    chosen: list[tuple[int, int, int, int]] = []
    for _, box in sorted(boxes, reverse=True):
        if all(_overlap(box, other) < 0.8 for other in chosen):
            chosen.append(box)
        if len(chosen) == limit:
            break
    return [(int(x0 / scale), int(y0 / scale), min(image.width, int(x1 / scale)),
             min(image.height, int(y1 / scale))) for x0, y0, x1, y1 in chosen]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


PART_SIZE = 360  # parts smaller than this are enlarged for their keypoints


def analyse_part(image: Image.Image, box: tuple[int, int, int, int]) -> Part:
    x0, y0, x1, y1 = box
    # A small margin: the detector needs a few pixels around the product's edge.
    mx, my = int((x1 - x0) * 0.04), int((y1 - y0) * 0.04)
    x0, y0 = max(0, x0 - mx), max(0, y0 - my)
    x1, y1 = min(image.width, x1 + mx), min(image.height, y1 + my)
    crop = image.crop((x0, y0, x1, y1))
    if max(crop.size) < PART_SIZE:
        factor = PART_SIZE / max(crop.size)
        crop = crop.resize((round(crop.width * factor), round(crop.height * factor)),
                           Image.BICUBIC)
    return Part((x0 / image.width, y0 / image.height, x1 / image.width, y1 / image.height),
                *_described(crop))


TINY = 12  # pixels a side


def tiny(image: Image.Image) -> np.ndarray:
    """The photo without its plain margin, as a 12x12 colour image: a unit vector of its
    deviations from its own mean ("tiny images", Torralba, Fergus and Freeman, PAMI
    2008). Close vectors (by dot product) propose candidates that the grey hashes miss:
    a product cut out of a larger picture keeps its colours and their layout."""
    return _tiny(trim_borders(image))


def _tiny(trimmed: Image.Image) -> np.ndarray:
    pixels = np.asarray(trimmed.resize((TINY, TINY), Image.BOX), dtype=np.float32).ravel()
    pixels -= pixels.mean()
    norm = float(np.linalg.norm(pixels))
    return pixels / norm if norm else pixels


def analyse_image(data: bytes, max_pixels: int | None = MAX_PIXELS) -> ImageAnalysis:
    """Hashes (with variants), keypoints, parts and thumbnail of image bytes from a single
    decode."""
    image = decode(data, max_pixels)
    variants, keypoints, colours = _described(image)
    return ImageAnalysis(
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
        hashes=variants["full"],
        thumbnail=make_thumbnail(image),
        variants=variants,
        features=keypoints,
        tiny=colours,
        parts=tuple(analyse_part(image, box) for box in photo_parts(image)),
    )


def make_thumbnail(image: Image.Image) -> bytes:
    thumb = image.copy()
    thumb.thumbnail(THUMBNAIL_SIZE)
    for quality in (85, 70, 50, 30):
        buf = io.BytesIO()
        thumb.save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= THUMBNAIL_MAX_BYTES:
            break
    return buf.getvalue()


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class Reference:
    """One reference photo, or a variant of it (mirrored, its centre, tilted)."""

    product: str
    photo: str  # file name, shown to reviewers
    variant: str  # "original", "mirrored", "known-counterfeit"
    hashes: ImageHashes
    kind: str = "full"  # "full" or "center": which query variants it is compared with


@dataclass(frozen=True)
class ImageMatch:
    reference: Reference
    distance: int  # pHash bits of 64, of the best pair
    dhash_distance: int
    query_variant: str = "full"

    @property
    def score(self) -> int:
        """pHash + dHash distance of the best pair (0-128): lower is closer."""
        return self.distance + self.dhash_distance


_QUERY_KIND = {"full": "full", "trimmed": "full", "center": "center"}


def reference_variants(product: str, name: str, base: Image.Image) -> list[Reference]:
    """A reference photo's hashes: as it is and mirrored, each whole, without its plain
    margin, cut at five anchors, its centre and its centre tilted."""
    references = []
    for variant, image in (("original", base), ("mirrored", ImageOps.mirror(base))):
        references.append(Reference(product, name, variant, hash_decoded(image)))
        # The product without its plain margin: what a listing shows when it cuts the
        # product out, and what a part of a larger picture found around it holds.
        trimmed = trim_borders(image)
        if trimmed.size != image.size:
            references.append(Reference(product, name, variant, hash_decoded(trimmed)))
        for crop in crops(image):
            references.append(Reference(product, name, variant, hash_decoded(crop)))
        references.append(Reference(product, name, variant, hash_decoded(center(image)), "center"))
        for angle in TILTS:
            tilted = image.rotate(angle, resample=Image.BICUBIC)
            references.append(Reference(product, name, variant, hash_decoded(center(tilted)),
                                        "center"))
    return references


class ReferenceIndex:
    """Every reference hash in two uint64 arrays, searched at once."""

    def __init__(self, references: Sequence[Reference]):
        self.references = list(references)
        # Per kind ("full", "center"), the references' positions and their hashes: a
        # query is compared with its own kind only, without masking the others.
        self._by_kind: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for kind in {r.kind for r in self.references}:
            positions = np.array([i for i, r in enumerate(self.references) if r.kind == kind],
                                 dtype=np.int64)
            self._by_kind[kind] = (
                positions,
                np.array([self.references[i].hashes.phash for i in positions], dtype=np.uint64),
                np.array([self.references[i].hashes.dhash for i in positions], dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.references)

    @classmethod
    def from_photos(cls, photos: Iterable[tuple[str, Path | BinaryIO]]) -> ReferenceIndex:
        """Index (product name, photo) pairs with their variants: mirrored (counterfeiters
        flip official photos), central region (crops), central region tilted."""
        references = []
        for product, source in photos:
            data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source.read()
            name = Path(source).name if isinstance(source, (str, Path)) else product
            references.extend(reference_variants(product, name, decode(data, max_pixels=None)))
        return cls(references)

    def nearest(self, hashes: ImageHashes) -> ImageMatch | None:
        """The closest whole-image reference to one whole-image hash."""
        return self.nearest_variants({"full": hashes})

    def nearest_variants(self, variants: dict[str, ImageHashes]) -> ImageMatch | None:
        """The best compatible (query variant, reference variant) pair."""
        if not self.references:
            return None
        best: ImageMatch | None = None
        for name, hashes in variants.items():
            arrays = self._by_kind.get(_QUERY_KIND.get(name, "full"))
            if arrays is None:
                continue
            positions, phashes, dhashes = arrays
            # popcounts are uint8 and their sum fits (at most 128): no wider arrays
            p = np.bitwise_count(phashes ^ np.uint64(hashes.phash))
            d = np.bitwise_count(dhashes ^ np.uint64(hashes.dhash))
            i = int(np.argmin(p + d))
            match = ImageMatch(self.references[int(positions[i])], int(p[i]), int(d[i]), name)
            if best is None or match.score < best.score:
                best = match
        return best


# Changes whenever keypoints or reference hashes would come out differently: cached
# reference analyses of another version are computed again.
FEATURES_VERSION = f"orb{N_FEATURES}-{WORKING_SIZE}-grey{SMALL}-colour{CHROMA}-4"


@dataclass(frozen=True, eq=False)  # arrays: equal only to itself
class ReferencePhoto:
    """A reference photo analysed once: its hash variants and its keypoints, as it is and
    mirrored (counterfeiters flip photos)."""

    product: str
    photo: str
    features: Features
    mirrored: Features
    hashes: tuple[Reference, ...] = ()
    sha256: str = ""
    tiny: np.ndarray = field(default_factory=lambda: np.zeros((2, 3 * TINY * TINY),
                                                              np.float32))  # and mirrored


def catalog_analysis(data: bytes) -> tuple[ImageAnalysis, Image.Image]:
    """A reference photo's hashes and thumbnail (what the catalog table keeps), and the
    decoded photo, for ``analyse_reference`` when its keypoints are not cached."""
    image = decode(data, max_pixels=None)
    return ImageAnalysis(hashlib.sha256(data).hexdigest(), image.width, image.height,
                         hash_decoded(image), make_thumbnail(image)), image


def analyse_reference(product: str, name: str, data: bytes,
                      image: Image.Image | None = None) -> ReferencePhoto:
    """Hash variants and keypoints of a reference photo (``image``: ``data`` decoded)."""
    image = decode(data, max_pixels=None) if image is None else image
    mirrored = ImageOps.mirror(image)
    return ReferencePhoto(product, name, features(image), features(mirrored),
                          tuple(reference_variants(product, name, image)),
                          hashlib.sha256(data).hexdigest(),
                          np.stack([tiny(image), tiny(mirrored)]))


@dataclass(frozen=True)
class PhotoMatch:
    """A listing photo verified to show a reference photo."""

    product: str
    photo: str
    verification: Verification
    mirrored: bool = False

    @property
    def inliers(self) -> int:
        return self.verification.inliers

    def describe(self) -> str:
        return self.verification.describe(self.mirrored)

    def reason(self) -> str:
        """"212 keypoints agree with reference photo trail-30.jpg (cropped to 78%, ...)"."""
        return (f"{self.inliers} keypoints agree with reference photo {self.photo} "
                f"({self.describe()})")

    def to_json(self) -> str:
        return json.dumps({"product": self.product, "photo": self.photo,
                           "mirrored": self.mirrored, **asdict(self.verification)})

    @classmethod
    def from_json(cls, text: str) -> PhotoMatch:
        data = json.loads(text)
        product, photo, mirrored = data.pop("product"), data.pop("photo"), data.pop("mirrored")
        data["region"] = tuple(data["region"])
        return cls(product, photo, Verification(**data), mirrored)


CANDIDATES = 6  # reference photos verified per listing photo, closest hashes first
PART_CANDIDATES = 3  # and per part of it
COLOUR_CANDIDATES = 3  # and the closest by colour layout, if not among those


def _within(result: Verification, box: tuple[float, float, float, float]) -> Verification:
    """A part's verification told in the whole photo's terms."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    r = result.region
    return replace(result, region=(x0 + r[0] * w, y0 + r[1] * h, x0 + r[2] * w, y0 + r[3] * h),
                   fills=result.fills * w * h)


class ImageMatcher:
    """Hashes propose, geometry decides: the reference photos whose hashes are closest
    to any variant or region of a listing photo are candidates, and a candidate is a
    match only when its keypoints and the listing photo's agree on one transform."""

    def __init__(self, photos: Sequence[ReferencePhoto]):
        self.photos = list(photos)
        self.index = ReferenceIndex([r for p in self.photos for r in p.hashes])
        key = {(p.product, p.photo): i for i, p in enumerate(self.photos)}
        # Per kind: each reference variant's photo, to take the best variant per photo.
        self._photo_of: dict[str, np.ndarray] = {}
        self._mirrored_of: dict[str, np.ndarray] = {}
        for kind, (positions, _, _) in self.index._by_kind.items():
            refs = [self.index.references[int(i)] for i in positions]
            self._photo_of[kind] = np.array(
                [key.get((r.product, r.photo), -1) for r in refs], dtype=np.int64)
            self._mirrored_of[kind] = np.array([r.variant == "mirrored" for r in refs],
                                               dtype=np.int64)
        self._tiny = (np.stack([p.tiny for p in self.photos]) if self.photos
                      else np.zeros((0, 2, 3 * TINY * TINY), np.float32))
        # What a stored match was checked against: the same key, the same answer.
        digest = hashlib.sha256(f"{FEATURES_VERSION} {MIN_INLIERS} {MIN_AGREEMENT} "
                                f"{STRONG_AGREEMENT} {CONFIRM_INLIERS} {CANDIDATES} "
                                f"{PART_CANDIDATES} {COLOUR_CANDIDATES} 2".encode())
        for p in sorted(self.photos, key=lambda p: (p.product, p.photo)):
            digest.update(f"\n{p.product}\t{p.photo}\t{p.sha256}".encode())
        self.key = digest.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.photos)

    def candidates(self, variants: dict[str, ImageHashes], k: int = CANDIDATES,
                   colours: np.ndarray | None = None) -> list[tuple[int, bool]]:
        """(reference photo, mirrored) pairs to verify: the ``k`` photos whose hashes come
        closest to any of the listing photo's variants, then the COLOUR_CANDIDATES
        whose tiny colour images (``colours``) are closest, best first; each in the
        orientation (as it is, mirrored) that came closer, or both when they tie."""
        if not self.photos:
            return []
        # Best score per photo, as it is (0) and mirrored (1).
        best = np.full((2, len(self.photos)), 10**6, dtype=np.int64)
        by_kind: dict[str, list[ImageHashes]] = {}
        for name, hashes in variants.items():
            by_kind.setdefault(_QUERY_KIND.get(name, "full"), []).append(hashes)
        for kind, hashes in by_kind.items():
            arrays = self.index._by_kind.get(kind)
            if arrays is None or not hashes:
                continue
            _, phashes, dhashes = arrays
            qp = np.array([h.phash for h in hashes], dtype=np.uint64)[:, None]
            qd = np.array([h.dhash for h in hashes], dtype=np.uint64)[:, None]
            scores = (np.bitwise_count(phashes[None, :] ^ qp).astype(np.int64)
                      + np.bitwise_count(dhashes[None, :] ^ qd)).min(axis=0)
            owners, mirrored = self._photo_of[kind], self._mirrored_of[kind]
            known = owners >= 0
            np.minimum.at(best, (mirrored[known], owners[known]), scores[known])
        overall = best.min(axis=0)
        order: list[tuple[int, bool]] = []
        for i in np.argsort(overall, kind="stable")[:k]:
            if overall[i] >= 10**6:
                break
            # Within 4 bits the hashes cannot tell the orientation (a symmetric product).
            for flip in (False, True):
                if best[int(flip), i] <= overall[i] + 4:
                    order.append((int(i), flip))
        if colours is not None and len(colours):
            similarity = self._tiny @ colours  # (photos, 2): as it is, mirrored
            for i in np.argsort(-similarity.max(axis=1), kind="stable")[:COLOUR_CANDIDATES]:
                flip = bool(similarity[i, 1] > similarity[i, 0])
                if (int(i), flip) not in order:
                    order.append((int(i), flip))
        return order

    def verify(self, analysis: ImageAnalysis, k: int = CANDIDATES,
               min_inliers: int = MIN_INLIERS) -> list[PhotoMatch]:
        """Every candidate whose geometry agrees, most inliers first: candidates of the
        whole photo checked against its keypoints, candidates of each part (a photo
        inside the photo) against the part's."""
        if analysis.features is None:
            return []
        found: dict[tuple[str, str], PhotoMatch] = {}
        searches = [(None, analysis.features, self.candidates(analysis.variants, k,
                                                              analysis.tiny))]
        searches += [(part, part.features, self.candidates(part.variants, PART_CANDIDATES,
                                                           part.tiny))
                     for part in analysis.parts]
        for part, query, candidates in searches:
            for i, mirrored in candidates:
                photo = self.photos[i]
                result = verify(query, photo.mirrored if mirrored else photo.features,
                                min_inliers)
                if result is None:
                    continue
                if part is not None:
                    result = _within(result, part.box)
                match = PhotoMatch(photo.product, photo.photo, result, mirrored)
                key = (photo.product, photo.photo)
                if key not in found or found[key].inliers < match.inliers:
                    found[key] = match
        return sorted(found.values(), key=lambda m: -m.inliers)

    def match(self, analysis: ImageAnalysis) -> PhotoMatch | None:
        found = self.verify(analysis)
        return found[0] if found else None

    @classmethod
    def from_photos(cls, photos: Iterable[tuple[str, Path | BinaryIO]]) -> ImageMatcher:
        refs = []
        for product, source in photos:
            data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source.read()
            name = Path(source).name if isinstance(source, (str, Path)) else product
            refs.append(analyse_reference(product, name, data))
        return cls(refs)
