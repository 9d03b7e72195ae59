"""Photo matching on a catalog of look-alikes: a copy of a reference photo is found
through every edit counterfeiters make, and another product shot the same way never is.

The catalog is 24 studio photos (fixtures/make_demo.py draws them): four kinds of
product in six colours, each on its own studio background. The look-alikes are other
designs of the same kind, in the same colour, in the same studio, as a brand's range
or a competitor's would be shot.
"""

from __future__ import annotations

import io
import random
import re
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from matchers import geometry
from matchers.images import ImageMatcher, analyse_image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fixtures"))
from make_demo import photo  # noqa: E402
from make_eval import IMAGE_EDITS, image_edit  # noqa: E402

sys.path.pop(0)

KINDS = ("backpack", "jacket", "flask", "shoe")
COLOURS = ((34, 92, 60), (180, 40, 30), (40, 70, 150), (200, 160, 40), (90, 90, 95),
           (230, 120, 160))


def studio(kind: str, colour: int, design: int = 0) -> Image.Image:
    return photo(kind, 700 + 10 * KINDS.index(kind) + colour, COLOURS[colour], design=design)


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=82)
    return buf.getvalue()


@pytest.fixture(scope="module")
def matcher() -> ImageMatcher:
    return ImageMatcher.from_photos(
        [(f"{kind} {colour}", io.BytesIO(jpeg(studio(kind, colour))))
         for kind in KINDS for colour in range(len(COLOURS))])


# The shoe is drawn facing one way: a mirrored copy is not the photo itself.
@pytest.mark.parametrize("edit", [*IMAGE_EDITS, "mirrored"])
@pytest.mark.parametrize("kind", ["shoe", "backpack"])
def test_an_edited_copy_is_found_with_what_was_done(matcher: ImageMatcher, kind: str,
                                                    edit: str) -> None:
    original = studio(kind, 2)
    copy = ImageOps.mirror(original) if edit == "mirrored" else \
        image_edit(original, edit, random.Random(5))
    match = matcher.match(analyse_image(jpeg(copy)))
    assert match is not None and match.product == f"{kind} 2", edit
    assert match.inliers >= geometry.MIN_INLIERS
    said = match.describe()
    expected = {"mirrored": "mirrored", "mirrored-cropped": "mirrored",
                "tilted-10": r"rotated (9|10|11)°", "screenshot": "inside a larger picture",
                "padded-grey": "inside a larger picture",
                "cropped-20": r"cropped to (6\d|70)% of its area"}.get(edit, "")
    assert re.search(expected, said), said


@pytest.mark.parametrize("design", [1, 2])
@pytest.mark.parametrize("edit", ["original", "screenshot", "meme"])
def test_a_look_alike_shot_the_same_way_is_not_a_copy(matcher: ImageMatcher, design: int,
                                                      edit: str) -> None:
    for kind in KINDS:
        for colour in range(len(COLOURS)):
            look_alike = studio(kind, colour, design)
            if edit != "original":
                look_alike = image_edit(look_alike, edit, random.Random(colour))
            match = matcher.match(analyse_image(jpeg(look_alike)))
            assert match is None, (kind, colour, match and match.reason())


def test_a_copy_in_another_colour_is_not_the_photo(matcher: ImageMatcher) -> None:
    # The same drawing in another product colour: the shape agrees, the photo does not.
    recoloured = photo("backpack", 700 + 2, (150, 40, 150))
    assert matcher.match(analyse_image(jpeg(recoloured))) is None


def test_a_black_and_white_copy_is_found_and_said(matcher: ImageMatcher) -> None:
    grey = ImageOps.grayscale(studio("shoe", 5)).convert("RGB")
    match = matcher.match(analyse_image(jpeg(grey)))
    assert match is not None and match.product == "shoe 5"
    assert "in black and white" in match.describe()


# -- what a crawl keeps between runs ------------------------------------------------------

def test_a_reference_photo_is_analysed_once_per_photo(tmp_path: Path, monkeypatch) -> None:
    import numpy as np

    import crawler.catalog as catalog
    from crawler.config import load_config
    from crawler.store.writer import Store
    from tests.conftest import DEMO

    text = (DEMO / "brand" / "monitor.toml").read_text(encoding="utf-8")
    (tmp_path / "monitor.toml").write_text(text.replace("{server}", "http://127.0.0.1:9"),
                                           encoding="utf-8")
    (tmp_path / "catalog").mkdir()
    for photo_path in (DEMO / "brand" / "catalog").glob("*.jpg"):
        (tmp_path / "catalog" / photo_path.name).write_bytes(photo_path.read_bytes())
    config = load_config(tmp_path / "monitor.toml")
    db = str(tmp_path / "c.db")
    first = catalog.catalog_photos(config.products, str(config.path), db)
    store = Store.open(db)
    store.sync_catalog(first)
    store.close()
    catalog.catalog_photos.cache_clear()

    def again(*args, **kwargs):
        raise AssertionError("a reference photo analysed again")

    monkeypatch.setattr(catalog, "analyse_reference", again)
    second = catalog.catalog_photos(config.products, str(config.path), db)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.reference.features.descriptors, b.reference.features.descriptors)
        assert [r.hashes for r in a.reference.hashes] == [r.hashes for r in b.reference.hashes]
    catalog.catalog_photos.cache_clear()


def test_a_stored_match_answers_only_for_the_catalog_it_was_checked_against(
        matcher: ImageMatcher) -> None:
    from crawler.pipelines.images import KnownImage

    analysis = analyse_image(jpeg(studio("shoe", 2)))
    match = matcher.match(analysis)
    stored = KnownImage(analysis.sha256, *analysis.hashes.hex(), 600, 600, None, None, None,
                        match.to_json(), matcher.key)
    again = stored.analysis().match
    assert again == match and again.reason() == match.reason()
    # Another reference photo makes another catalog: its key differs, so a crawl
    # fetches and checks the photo again instead of trusting the stored answer.
    bigger = ImageMatcher([*matcher.photos, *ImageMatcher.from_photos(
        [("flask 9", io.BytesIO(jpeg(studio("flask", 1, 1))))]).photos])
    assert bigger.key != matcher.key
