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
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageOps

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
    hashes: ImageHashes
    thumbnail: bytes  # JPEG, at most THUMBNAIL_MAX_BYTES


def _to_int(value: imagehash.ImageHash) -> int:
    return int(str(value), 16)


def decode(data: bytes) -> Image.Image:
    """Decode image bytes to RGB at reduced scale; ImageError when they are not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", _DRAFT_SIZE)
            image = ImageOps.exif_transpose(image)
            image.load()
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


def analyse_image(data: bytes) -> ImageAnalysis:
    """Hash and thumbnail image bytes from a single decode."""
    image = decode(data)
    return ImageAnalysis(
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
        hashes=hash_decoded(image),
        thumbnail=make_thumbnail(image),
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
    """One reference photo (or a variant of it, such as its mirror image)."""

    product: str
    photo: str  # file name, shown to reviewers
    variant: str  # "original" or "mirrored"
    hashes: ImageHashes


@dataclass(frozen=True)
class ImageMatch:
    reference: Reference
    distance: int  # pHash bits of 64
    dhash_distance: int


class ReferenceIndex:
    """Every reference hash in two uint64 arrays, searched at once."""

    def __init__(self, references: Sequence[Reference]):
        self.references = list(references)
        self._phash = np.array([r.hashes.phash for r in references], dtype=np.uint64)
        self._dhash = np.array([r.hashes.dhash for r in references], dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.references)

    @classmethod
    def from_photos(cls, photos: Iterable[tuple[str, Path]]) -> ReferenceIndex:
        """Index (product name, photo path) pairs, each photo also mirrored, because
        counterfeiters flip official photos to dodge naive matching."""
        references = []
        for product, path in photos:
            image = decode(Path(path).read_bytes())
            name = Path(path).name
            references.append(Reference(product, name, "original", hash_decoded(image)))
            mirrored = hash_decoded(ImageOps.mirror(image))
            references.append(Reference(product, name, "mirrored", mirrored))
        return cls(references)

    def nearest(self, hashes: ImageHashes) -> ImageMatch | None:
        if not self.references:
            return None
        p = np.bitwise_count(self._phash ^ np.uint64(hashes.phash))
        d = np.bitwise_count(self._dhash ^ np.uint64(hashes.dhash))
        # pHash decides; dHash breaks ties (it separates near-identical crops better).
        best = int(np.lexsort((d, p))[0])
        return ImageMatch(self.references[best], int(p[best]), int(d[best]))
