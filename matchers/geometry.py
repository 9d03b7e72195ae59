"""Geometric verification: does a listing photo show a reference photo, and how.

A perceptual hash says two photos *look* alike; two unrelated products shot the same
way (same white background, same framing) look alike too. A copy of a photo shares
more than a look: the same corners and edges, in the same arrangement, up to the
crop, tilt, scale, mirror or perspective of the edit. This module checks that:

- ORB keypoints and binary descriptors (Rublee, Rabaud, Konolige, Bradski, "ORB: an
  efficient alternative to SIFT or SURF", ICCV 2011), computed once per photo at a
  fixed working size;
- nearest-neighbour matching by Hamming distance, kept only where the best match is
  clearly better than the second (Lowe's ratio test, "Distinctive Image Features from
  Scale-Invariant Keypoints", IJCV 2004, section 7.1);
- a homography fitted to those matches with RANSAC (Fischler and Bolles, "Random
  Sample Consensus", CACM 1981), accepted only when enough matches agree with it and
  the transform is one an edit can make (the reference's outline stays a convex,
  not-too-skewed quadrilateral of sensible size).

What the transform says about the edit (cropped to 78%, rotated 6 degrees, inside a
larger picture) is worked out from where the reference's outline lands in the
listing photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

# Working size (long side, pixels): keypoints of a 400 px product photo are stable
# under the resizes marketplaces apply, and detection stays a few milliseconds.
WORKING_SIZE = 512
N_FEATURES = 400
RATIO = 0.8  # Lowe's ratio test
RANSAC_PIXELS = 8.0  # reprojection error, at the working size
# A pair is verified when at least this many matches agree with one plausible
# transform. Chosen on the tuning half of bench/image_robustness.py's photos.
MIN_INLIERS = 14
MIN_INLIER_SHARE = 0.25  # of the ratio-test matches: unrelated pairs agree by chance
# And at least this share of the reference's textured blocks must look the same once
# the listing photo is aligned to it (two products shot alike agree on a silhouette or
# a wheel; a copy agrees nearly everywhere it is not covered). Chosen on the tuning half.
MIN_AGREEMENT = 0.5
STRONG_AGREEMENT = 0.7
CONFIRM_INLIERS = 28
MIN_COLOUR = 0.6  # share of coloured pixels keeping their hue
GREY_AGREEMENT = 0.9  # a black-and-white copy of a colour photo


@dataclass(frozen=True, eq=False)  # arrays: equal only to itself
class Features:
    """ORB keypoints of one photo at the working size."""

    width: int
    height: int
    points: np.ndarray  # float32 (n, 2), at the working size
    descriptors: np.ndarray  # uint8 (n, 32)
    # The photo in grey at half the working size, to compare pixels once aligned.
    small: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    # Its colour (CIELAB a*, b*, offset by 128) at an eighth of the working size.
    chroma: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 2), np.uint8))

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        header = np.array([self.width, self.height, len(self.points), *self.small.shape,
                           *self.chroma.shape[:2]], dtype=np.int32)
        return header.tobytes() + self.points.astype(np.float32).tobytes() + \
            self.descriptors.astype(np.uint8).tobytes() + \
            self.small.astype(np.uint8).tobytes() + self.chroma.astype(np.uint8).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        width, height, n, sh, sw, ch, cw = (int(v) for v in
                                            np.frombuffer(data[:28], dtype=np.int32))
        at = 28
        points = np.frombuffer(data[at:at + 8 * n], dtype=np.float32).reshape(n, 2)
        at += 8 * n
        descriptors = np.frombuffer(data[at:at + 32 * n], dtype=np.uint8).reshape(n, 32)
        at += 32 * n
        small = np.frombuffer(data[at:at + sh * sw], dtype=np.uint8).reshape(sh, sw)
        at += sh * sw
        chroma = np.frombuffer(data[at:at + ch * cw * 2], dtype=np.uint8).reshape(ch, cw, 2)
        return cls(width, height, points, descriptors, small, chroma)


_orb = None


def _detector():
    global _orb
    if _orb is None:
        # fastThreshold lower than the default 20: product photos on plain backgrounds
        # have few strong corners outside the product.
        _orb = cv2.ORB_create(nfeatures=N_FEATURES, fastThreshold=10)
    return _orb


def features(image: Image.Image, grey: Image.Image | None = None) -> Features:
    """ORB keypoints of ``image`` (RGB), resized so that its long side is WORKING_SIZE;
    ``grey``: the image converted to "L" already, if the caller has it."""
    scale = WORKING_SIZE / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.BILINEAR)
        grey = None  # of the image before the resize
    grey = np.asarray(grey if grey is not None else image.convert("L"))
    small = cv2.resize(grey, (max(1, image.width // SMALL), max(1, image.height // SMALL)),
                       interpolation=cv2.INTER_AREA)
    colour = image if image.mode == "RGB" else image.convert("RGB")
    rgb = cv2.resize(np.asarray(colour), (max(1, image.width // CHROMA),
                     max(1, image.height // CHROMA)), interpolation=cv2.INTER_AREA)
    chroma = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[:, :, 1:])
    keypoints, descriptors = _detector().detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return Features(image.width, image.height, np.zeros((0, 2), np.float32),
                        np.zeros((0, 32), np.uint8), small, chroma)
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return Features(image.width, image.height, points, descriptors, small, chroma)


@dataclass(frozen=True)
class Verification:
    """Matches between a listing photo and a reference photo that one transform explains."""

    inliers: int
    matches: int  # after the ratio test
    # Where the reference photo lands in the listing photo: its outline's bounding
    # box, as shares (0-1) of the listing photo's width and height, clipped to it.
    region: tuple[float, float, float, float]
    visible: float  # share of the reference photo's area inside the listing photo
    fills: float  # share of the listing photo's area the reference photo covers
    rotation: float  # degrees, counter-clockwise
    scale: float  # listing pixels per reference pixel, at the working sizes
    perspective: float  # how far the outline is from a parallelogram, 0: not at all
    agreement: float = 0.0  # share of the reference's textured blocks seen again, aligned
    grey: bool = False  # a black-and-white copy of a colour photo

    def describe(self, mirrored: bool = False) -> str:
        """The edit in a reviewer's words: "cropped to 78% of its area, rotated 6°,
        inside a larger picture"."""
        parts = []
        if mirrored:
            parts.append("mirrored")
        if self.grey:
            parts.append("in black and white")
        if self.visible < 0.93:
            parts.append(f"cropped to {self.visible:.0%} of its area")
        if abs(self.rotation) >= 2:
            parts.append(f"rotated {abs(self.rotation):.0f}°")
        if self.perspective >= 0.04:
            parts.append("seen in perspective")
        if self.fills < 0.85:
            parts.append("inside a larger picture")
        return ", ".join(parts) if parts else "the whole photo"


def _outline(homography: np.ndarray, ref: Features) -> np.ndarray:
    corners = np.array([[0, 0], [ref.width, 0], [ref.width, ref.height], [0, ref.height]],
                       dtype=np.float32).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(corners, homography).reshape(4, 2)


def _convex(quad: np.ndarray) -> bool:
    signs = []
    for i in range(4):
        a, b, c = quad[i], quad[(i + 1) % 4], quad[(i + 2) % 4]
        signs.append(np.sign((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])))
    return all(s > 0 for s in signs) or all(s < 0 for s in signs)


def _area(quad: np.ndarray) -> float:
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


_matcher = None


def _bf():
    global _matcher
    if _matcher is None:
        _matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    return _matcher


SMALL = 2  # the grey copy is this many times smaller than the working size
CHROMA = 8  # and the colour copy this many times
BLOCK = 8  # pixels of the grey copy per block compared


def _pixel_agreement(ref: Features, query: Features, homography: np.ndarray) -> float:
    """Share of the reference's textured blocks that the aligned listing photo shows
    again: normalized cross-correlation >= 0.6 per 8x8 block of the grey copies (blocks
    under a caption, sticker or text simply disagree; the median copy agrees widely)."""
    if ref.small.size == 0 or query.small.size == 0:
        return 0.0
    to_small = np.diag([1 / SMALL, 1 / SMALL, 1.0])
    h = to_small @ homography @ np.linalg.inv(to_small)
    rh, rw = ref.small.shape
    warped = cv2.warpPerspective(query.small, h, (rw, rh), flags=cv2.INTER_LINEAR |
                                 cv2.WARP_INVERSE_MAP, borderValue=0)
    valid = cv2.warpPerspective(np.full_like(query.small, 255), h, (rw, rh),
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
    by, bx = rh // BLOCK, rw // BLOCK
    if by == 0 or bx == 0:
        return 0.0
    a = ref.small[:by * BLOCK, :bx * BLOCK].astype(np.float32)
    b = warped[:by * BLOCK, :bx * BLOCK].astype(np.float32)
    v = valid[:by * BLOCK, :bx * BLOCK]

    def blocks(x):
        return x.reshape(by, BLOCK, bx, BLOCK).swapaxes(1, 2).reshape(by * bx, BLOCK * BLOCK)

    a, b, v = blocks(a), blocks(b), blocks(v)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    sa, sb = np.sqrt((a * a).sum(axis=1)), np.sqrt((b * b).sum(axis=1))
    # Blocks of plain background say nothing; blocks outside the listing photo neither.
    textured = (sa > 8.0 * BLOCK) & (v.min(axis=1) > 0)
    if textured.sum() < 4:
        return 0.0
    ncc = (a * b).sum(axis=1)[textured] / np.maximum(sa[textured] * sb[textured], 1e-6)
    return float((ncc >= 0.6).mean())


def _colour(ref: Features, query: Features, homography: np.ndarray) -> str:
    """How the aligned listing photo keeps the reference's colours: "kept" (hue within
    30 degrees, CIELAB a*b*, on MIN_COLOUR of the reference's coloured pixels), "grey"
    (a black-and-white copy), "changed", or "none" (a grey or black reference)."""
    if ref.chroma.size == 0 or query.chroma.size == 0:
        return "none"
    to_small = np.diag([1 / CHROMA, 1 / CHROMA, 1.0])
    h = to_small @ homography @ np.linalg.inv(to_small)
    rh, rw = ref.chroma.shape[:2]
    warped = cv2.warpPerspective(query.chroma, h, (rw, rh), flags=cv2.INTER_LINEAR |
                                 cv2.WARP_INVERSE_MAP, borderValue=(128, 128))
    valid = cv2.warpPerspective(np.full(query.chroma.shape[:2], 255, np.uint8), h, (rw, rh),
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
    a = ref.chroma.astype(np.float32) - 128
    b = warped.astype(np.float32) - 128
    ca, cb = np.hypot(a[..., 0], a[..., 1]), np.hypot(b[..., 0], b[..., 1])
    coloured = (ca > 12) & (valid > 0)
    if coloured.sum() < 12:
        return "none"
    if (cb[coloured] <= 6).mean() >= 0.8:
        return "grey"
    cos = (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]) / np.maximum(ca * cb, 1e-6)
    kept = (cb > 6) & (cos > math.cos(math.radians(30)))
    return "kept" if kept[coloured].mean() >= MIN_COLOUR else "changed"


GUIDED_PIXELS = 6.0
GUIDED_BITS = 64  # of 256: the same corner seen again, after an edit


def _guided_share(ref: Features, query: Features, similarity: np.ndarray) -> float:
    projected = ref.points @ similarity[:, :2].T + similarity[:, 2]
    inside = ((projected[:, 0] >= 0) & (projected[:, 0] < query.width)
              & (projected[:, 1] >= 0) & (projected[:, 1] < query.height))
    if inside.sum() == 0:
        return 0.0
    p = projected[inside]
    near = ((p[:, None, :] - query.points[None, :, :]) ** 2).sum(axis=2) <= GUIDED_PIXELS ** 2
    rows, cols = np.nonzero(near)
    if len(rows) == 0:
        return 0.0
    a = ref.descriptors[inside][rows].view(np.uint64)
    b = query.descriptors[cols].view(np.uint64)
    bits = np.bitwise_count(a ^ b).sum(axis=1)
    found = np.zeros(len(p), dtype=bool)
    found[rows[bits <= GUIDED_BITS]] = True
    return float(found.mean())


def verify(query: Features, ref: Features, min_inliers: int = MIN_INLIERS) -> Verification | None:
    """The transform that maps ``ref`` into ``query``, if at least ``min_inliers``
    keypoints agree on one an edit can make; None otherwise."""
    if len(query) < 4 or len(ref) < 4:
        return None
    pairs = _bf().knnMatch(ref.descriptors, query.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < min_inliers:
        return None
    src = ref.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    dst = query.points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    # A similarity (rotation, uniform scale, shift) first: it is what crops, tilts and
    # resizes make, and with 4 degrees of freedom chance agreement is rare. Its inliers
    # then fit a homography, which follows a perspective edit more closely.
    similarity, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                   ransacReprojThreshold=RANSAC_PIXELS)
    if similarity is None or mask is None:
        return None
    homography = None
    if int(mask.sum()) >= 8:
        keep = mask.ravel().astype(bool)
        homography, _ = cv2.findHomography(src[keep], dst[keep], 0)
    if homography is None:
        homography = np.vstack([similarity, [0, 0, 1]])
    inliers = int(mask.sum())
    if inliers < min_inliers or inliers < MIN_INLIER_SHARE * len(good):
        return None
    # Guided matching (Hartley and Zisserman, Multiple View Geometry, 4.7.1): with the
    # transform known, every reference keypoint that lands inside the listing photo
    # should find its own keypoint there. A copy's keypoints mostly do; an unrelated
    # object that shares a detail (a wheel, a scroll) agrees on that detail only.
    agreement = _pixel_agreement(ref, query, homography)
    # A copy keeps the reference's colours. Another product of the same shape in
    # another colour is the classic look-alike: a change of hue is not a copy. A
    # black-and-white copy has no hue to compare and must keep nearly all structure.
    colour = _colour(ref, query, homography)
    if colour == "changed":
        return None
    if agreement < (GREY_AGREEMENT if colour == "grey" else MIN_AGREEMENT):
        return None
    # Two instruments of one maker agree on their wood and their scroll: between half
    # and most of the blocks. Below STRONG_AGREEMENT, many keypoints must agree too.
    if agreement < STRONG_AGREEMENT and inliers < CONFIRM_INLIERS:
        return None
    # Inliers must spread over the reference, not sit on one small patch (a logo, a
    # caption in the same font), or one detail would stand for the whole photo.
    kept = src.reshape(-1, 2)[mask.ravel().astype(bool)]
    spread = (np.ptp(kept[:, 0]) * np.ptp(kept[:, 1])) / float(ref.width * ref.height)
    if spread < 0.04:
        return None
    quad = _outline(homography, ref)
    if not np.isfinite(quad).all() or not _convex(quad):
        return None
    ref_area = float(ref.width * ref.height)
    quad_area = _area(quad)
    scale = math.sqrt(quad_area / ref_area)
    if not 0.05 <= scale <= 20:
        return None
    # Opposite sides of the outline: equal for a similarity or an affine map; a
    # perspective edit makes them differ a little, a degenerate fit a lot.
    sides = [float(np.linalg.norm(quad[(i + 1) % 4] - quad[i])) for i in range(4)]
    perspective = max(abs(sides[0] - sides[2]) / max(sides[0], sides[2]),
                      abs(sides[1] - sides[3]) / max(sides[1], sides[3]))
    if perspective > 0.45:
        return None
    top = quad[1] - quad[0]
    rotation = -math.degrees(math.atan2(float(top[1]), float(top[0])))
    # How much of the reference is inside the listing photo, and how much of the
    # listing photo it covers: clip the outline to the listing photo's frame.
    frame = np.array([[0, 0], [query.width, 0], [query.width, query.height],
                      [0, query.height]], dtype=np.float32)
    inside, _ = cv2.intersectConvexConvex(quad.astype(np.float32), frame)
    visible = min(1.0, inside / quad_area) if quad_area else 0.0
    fills = min(1.0, inside / float(query.width * query.height))
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    region = (max(0.0, float(x0) / query.width), max(0.0, float(y0) / query.height),
              min(1.0, float(x1) / query.width), min(1.0, float(y1) / query.height))
    return Verification(inliers, len(good), region, visible, fills, rotation, scale,
                        perspective, agreement, colour == "grey")
