"""Perceptual image hashes and a reference index searched by Hamming distance.

Hashes (both from imagehash, on one decode of the image):
- pHash: DCT of a 32x32 greyscale image, top-left 8x8 coefficients against their
  median (Zauner, "Implementation and Benchmarking of Perceptual Image Hash
  Functions", 2010; http://www.hackerfactor.com/blog/index.php?/archives/432-Looks-Like-It.html).
- dHash: signs of horizontal gradients on a 9x8 greyscale image (Krawetz,
  http://www.hackerfactor.com/blog/index.php?/archives/529-Kind-of-Like-That.html).

Hashes are kept as unsigned 64-bit integers (hex in the database), never as
``ImageHash`` objects, and compared with a vectorized popcount of XOR against every
reference at once.

Robustness to the edits counterfeiters make comes from hashing variants, not from
loosening the threshold: each reference photo is indexed as it is, mirrored, its
central region, and its central region tilted by a few degrees; each listing photo
is hashed as it is, with uniform borders (padding, letterboxing) trimmed, and its
central region. Compatible variants are compared (whole with whole, centre with
centre), and a pair counts by the sum of its pHash and dHash distances: two
independent hashes must agree, which keeps unrelated photos out even though more
pairs are tried.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import imagehash
import numpy as np
from PIL import Image, ImageChops, ImageOps

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


def _to_int(value: imagehash.ImageHash) -> int:
    return int(str(value), 16)


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
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageError(f"not a readable image: {exc}") from None
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def hash_decoded(image: Image.Image) -> ImageHashes:
    return ImageHashes(phash=_to_int(imagehash.phash(image)),
                       dhash=_to_int(imagehash.dhash(image)))


CENTER = 0.8  # share of width and height kept by the "center" variant
TILTS = (-4.0, 4.0)  # degrees; tilted references catch photos turned a few degrees
# A listing photo matches a reference when pHash + dHash distance (of 128 bits) of
# its best compatible variant pair is at most this. Set from bench/image_robustness.py
# (false-positive rate over unrelated photos <= 0.1%).
ACCEPT_SCORE = 28


def trim_borders(image: Image.Image, tolerance: int = 12) -> Image.Image:
    """The image without uniform borders (padding, letterboxing) of its corner colour."""
    corner = image.getpixel((0, 0))
    background = Image.new(image.mode, image.size, corner)
    diff = ImageChops.difference(image, background).convert("L")
    box = diff.point(lambda v: 255 if v > tolerance else 0).getbbox()
    if not box:
        return image
    w, h = box[2] - box[0], box[3] - box[1]
    if w < image.width * 0.3 or h < image.height * 0.3:
        return image  # the "border" is most of the photo: not padding
    return image.crop(box)


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


def query_variants(image: Image.Image) -> dict[str, ImageHashes]:
    variants = {"full": hash_decoded(image)}
    trimmed = trim_borders(image)
    if trimmed.size != image.size:
        variants["trimmed"] = hash_decoded(trimmed)
    variants["center"] = hash_decoded(center(trimmed))
    return variants


def analyse_image(data: bytes, max_pixels: int | None = MAX_PIXELS) -> ImageAnalysis:
    """Hash (with variants) and thumbnail image bytes from a single decode."""
    image = decode(data, max_pixels)
    variants = query_variants(image)
    return ImageAnalysis(
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
        hashes=variants["full"],
        thumbnail=make_thumbnail(image),
        variants=variants,
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

    @property
    def accepted(self) -> bool:
        return self.score <= ACCEPT_SCORE


_QUERY_KIND = {"full": "full", "trimmed": "full", "center": "center"}


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
            base = decode(data, max_pixels=None)
            for variant, image in (("original", base), ("mirrored", ImageOps.mirror(base))):
                references.append(Reference(product, name, variant, hash_decoded(image)))
                for crop in crops(image):
                    references.append(Reference(product, name, variant, hash_decoded(crop)))
                references.append(Reference(product, name, variant,
                                            hash_decoded(center(image)), "center"))
                for angle in TILTS:
                    tilted = image.rotate(angle, resample=Image.BICUBIC)
                    references.append(Reference(product, name, variant,
                                                hash_decoded(center(tilted)), "center"))
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
