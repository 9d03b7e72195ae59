"""Brand and product names in listing titles, however disguised; counterfeit vocabulary.

Normalization before matching: Unicode NFKC (full-width letters, ligatures),
accents stripped (NFKD, combining marks removed), case folding, homoglyphs
(Cyrillic/Greek letters that look Latin) and leetspeak digits folded to letters,
and spaced-out letters ("N o r d v i k") joined.

Brand mention: Levenshtein distance (rapidfuzz) between the brand and each title
window of the same number of words, or the same letters with spaces removed; the
edit budget grows with the name's length, so a short brand needs an exact token
(otherwise "Acme" would match "acne").

Product similarity: rapidfuzz ``token_set_ratio`` (a title that contains every word
of the product name scores 100, extra words do not count against it). A large
catalog is searched through ``ProductIndex``: names normalized once, a character
trigram index proposes the names that share most of their trigrams with the title
(containment, so a short name inside a long title is proposed), and rapidfuzz's
``process.extractOne`` scores those in C.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ӏ": "l",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ζ": "z", "η": "n",
})
_LEET = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t",
                       "$": "s", "@": "a", "!": "i", "|": "l", "€": "e"})
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPACED = re.compile(r"\b(?:\w[ .\-_*]){2,}\w\b")

# Counterfeit vocabulary by language of the marketplaces cfmon meets. Terms are matched
# folded (case, accents: "contrefacon" finds "contrefaçon"), on word boundaries where
# the script has them. Words that also name honest goods stay out ("faux leather",
# "2 kW", a plain "copy" of a book is English-only and long-standing).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "en": ("replica", "replicas", "1:1", "1to1", "1 to 1", "aaa", "aaa+", "aaaa", "grade aaa",
           "mirror quality", "mirror copy", "dupe", "dupes", "inspired by", "fake",
           "super fake", "knockoff", "knock-off", "knock off", "copy", "high copy", "super copy",
           "top copy", "1:1 copy", "unauthorized copy", "imitation", "reproduction", "clone",
           "not original", "non original", "oem copy", "look-alike", "lookalike",
           "same factory", "original quality", "unbranded copy"),
    "fr": ("contrefaçon", "réplique", "copie", "imitation", "qualité miroir", "pas original"),
    "es": ("réplica", "imitación", "falsificado", "falsificada", "copia", "clon", "pirata",
           "no original"),
    "it": ("replica", "imitazione", "contraffatto", "contraffatta", "falso", "copia",
           "non originale"),
    "de": ("replik", "nachbau", "fälschung", "gefälscht", "kopie", "imitat", "nachahmung",
           "nicht original"),
    "pt": ("réplica", "imitação", "falsificado", "cópia", "primeira linha", "não original"),
    "nl": ("replica", "namaak", "nep", "kopie", "imitatie", "niet origineel"),
    "pl": ("podróbka", "podrobiony", "replika", "kopia", "imitacja", "nieoryginalny"),
    "tr": ("replika", "çakma", "taklit", "a kalite", "orijinal değil"),
    "ru": ("реплика", "копия", "подделка", "люкс копия", "паль", "не оригинал", "реплика 1:1"),
    "ar": ("تقليد", "مقلد", "طبق الأصل", "ليس أصلي", "كوبي"),
    "zh": ("高仿", "复刻", "仿品", "原单", "精仿", "a货", "仿冒", "山寨", "非正品"),
    "ja": ("コピー品", "スーパーコピー", "レプリカ", "偽物", "模造品", "パチモン"),
    "ko": ("레플리카", "짝퉁", "이미테이션", "가품", "미러급"),
    "vi": ("hàng nhái", "hàng giả", "hàng fake", "hàng rep", "không chính hãng"),
    "th": ("ของปลอม", "ก๊อปเกรด", "งานก๊อป", "เกรดมิเรอร์", "ของก๊อป"),
    "id": ("tiruan", "palsu", "kw super", "barang kw", "bukan original"),
}
DEFAULT_VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys(
    term for terms in VOCABULARY.values() for term in terms))


_MARKS = str.maketrans("", "", "™®©℠")


def fold(text: str) -> str:
    """NFKC, accents off, case folded, homoglyphs to Latin, invisible characters
    (zero-width spaces, joiners) and trademark signs dropped; digits kept."""
    text = unicodedata.normalize("NFKC", text.translate(_MARKS))
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))
    return text.casefold().translate(_HOMOGLYPHS)


def normalize(text: str) -> str:
    """Fold, undo leetspeak, join spaced-out letters, keep words separated by one space."""
    folded = fold(text)
    folded = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), folded)
    words = [w.translate(_LEET) if _is_leet(w) else w
             for w in re.split(r"\s+", folded)]
    return " ".join(_WORD.findall(" ".join(words)))


def _is_leet(word: str) -> bool:
    """A word mixing letters with leet digits/symbols ("n0rdv1k"), not a number ("30l")."""
    letters = sum(c.isalpha() for c in word)
    leet = sum(c in "0134570$@!|€" for c in word)
    return letters >= 2 and leet >= 1 and not re.fullmatch(r"\d+[a-z]{0,3}", word)


def edit_budget(length: int) -> int:
    """Edits allowed for a brand name of ``length`` letters."""
    if length <= 4:
        return 0
    if length <= 7:
        return 1
    return 2


@dataclass(frozen=True)
class BrandMention:
    name: str  # the configured brand name or alias that matched
    found: str  # the title text that matched it
    exact: bool  # the name stands in the title as written (no disguise)
    distance: int


# Titles are under 1 KB in practice; a longer one is cut before matching, so that a
# page cannot make matching slow (every matcher is linear in its input up to this).
TITLE_LIMIT = 1000


def find_brand(title: str, names: Sequence[str]) -> BrandMention | None:
    """The best mention of any brand name in ``title``, or None."""
    title = title[:TITLE_LIMIT]
    # "Exact" is judged on the title as written (only NFKC and case folded): an
    # accent or a Cyrillic letter inside the brand name is a disguise.
    plain = _WORD.findall(unicodedata.normalize("NFKC", title.translate(_MARKS)).casefold())
    words = normalize(title).split()
    best: BrandMention | None = None
    for name in names:
        target = normalize(name).split()
        if not target:
            continue
        joined_target = "".join(target)
        budget = edit_budget(len(joined_target))
        n = len(target)
        candidates = [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        # Brand names glued together or split differently ("nord vik", "acmeoutdoor").
        candidates += ["".join(words[i:i + k]) for k in (1, 2, 3) for i in range(len(words) - k + 1)]
        for window in candidates:
            compact = window.replace(" ", "")
            if abs(len(compact) - len(joined_target)) > budget:
                continue
            distance = Levenshtein.distance(compact, joined_target, score_cutoff=budget)
            if distance > budget:
                continue
            exact = _contains(plain, _WORD.findall(unicodedata.normalize("NFKC", name).casefold()))
            mention = BrandMention(name, _as_written(title, compact), exact,
                                   0 if exact else distance)
            if best is None or (mention.exact, -mention.distance) > (best.exact, -best.distance):
                best = mention
    return best


def _as_written(title: str, compact: str) -> str:
    """The shortest run of the title's own words that normalizes to ``compact``, so a
    reviewer sees "N0rdvik", not its folded form. A run is at most one word per letter
    ("N o r d v i k"), which keeps this linear in the title's length."""
    raw = title.split()
    for size in range(1, min(len(raw), len(compact) + 1) + 1):
        for i in range(len(raw) - size + 1):
            piece = " ".join(raw[i:i + size])
            if normalize(piece).replace(" ", "") == compact:
                return piece.strip(".,;:!?()[]\"'")
    return compact


def _contains(words: list[str], target: list[str]) -> bool:
    n = len(target)
    return any(words[i:i + n] == target for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class ProductMatch:
    name: str
    similarity: float  # 0-100


def best_product(title: str, products: Iterable[tuple[str, Sequence[str]]],
                 brand_names: Sequence[str] = ()) -> ProductMatch | None:
    """The catalog product whose name (or alias) best matches ``title``.

    Brand words are removed from both sides first: a title that only names the
    brand must not look like every product of it. (One-off: a catalog matched against
    many titles builds its ProductIndex once.)
    """
    return ProductIndex(products, brand_names).best(title)


class ProductIndex:
    """``best_product`` for a catalog of any size: the same answer, without scoring
    every name (30,000 names: milliseconds, not seconds; bench/matching.py)."""

    # Below this many names, scoring them all is as fast as the prefilter.
    DIRECT = 500
    # Names proposed by the trigram prefilter and then scored.
    CANDIDATES = 300

    def __init__(self, products: Iterable[tuple[str, Sequence[str]]],
                 brand_names: Sequence[str] = ()):
        self.brand_words = {w for name in brand_names for w in normalize(name).split()}
        self.products: list[str] = []
        self.choices: list[str] = []
        for product, aliases in products:
            for name in (product, *aliases):
                words = [w for w in normalize(name).split() if w not in self.brand_words]
                if words:
                    self.products.append(product)
                    self.choices.append(" ".join(words))
        postings: dict[str, list[int]] = {}
        self._sizes = np.zeros(len(self.choices), dtype=np.int32)
        for i, choice in enumerate(self.choices):
            grams = _trigrams(choice)
            self._sizes[i] = max(1, len(grams))
            for gram in grams:
                postings.setdefault(gram, []).append(i)
        self._postings = {g: np.array(ids, dtype=np.int32) for g, ids in postings.items()}

    def best(self, title: str) -> ProductMatch | None:
        words = [w for w in normalize(title).split() if w not in self.brand_words]
        if not words or not self.choices:
            return None
        text = " ".join(words)
        candidates = self._propose(text)
        found = process.extractOne(text, [self.choices[i] for i in candidates],
                                   scorer=fuzz.token_set_ratio)
        if found is None:
            return None
        _, score, position = found
        return ProductMatch(self.products[candidates[position]], float(score))

    def _propose(self, text: str) -> list[int]:
        if len(self.choices) <= self.DIRECT:
            return list(range(len(self.choices)))
        lists = [self._postings[g] for g in _trigrams(text) if g in self._postings]
        if not lists:
            return list(range(min(len(self.choices), self.CANDIDATES)))
        shared = np.bincount(np.concatenate(lists), minlength=len(self.choices))
        # the larger of: how much of the name is in the title, how much of the title
        # is in the name
        containment = np.maximum(shared / self._sizes, shared / max(1, len(lists)))
        top = np.argpartition(-containment, min(self.CANDIDATES, len(containment) - 1))
        return [int(i) for i in top[:self.CANDIDATES] if shared[i]]


def _trigrams(text: str) -> set[str]:
    padded = f" {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def find_vocabulary(title: str, extra: Sequence[str] = ()) -> list[str]:
    """Counterfeit terms present in ``title``, as the vocabulary spells them, in its order."""
    text = fold(title)
    found, seen = [], set()
    for term in (*DEFAULT_VOCABULARY, *extra):
        folded = fold(term)
        if folded not in seen and _has_term(text, folded):
            seen.add(folded)
            found.append(term)
    return found


def _has_term(text: str, term: str) -> bool:
    if not term.isascii() and not any(c.isalpha() and c.isascii() for c in term):
        return term in text  # CJK and similar: no word boundaries to honour
    pattern = r"(?<![\w])" + re.escape(term) + r"(?![\w+])"
    return re.search(pattern, text) is not None


def normalize_seller(name: str) -> str:
    """A seller name folded hard (case, accents, homoglyphs, full-width letters,
    punctuation, spacing): what a look-alike shop name has in common with the real one."""
    return "".join(_WORD.findall(fold(name)))


def exact_name(name: str) -> str:
    """A seller name as it must match to be the same seller: Unicode NFC, case folded,
    outer spaces off. "Nordvik Оfficial Store" (a Cyrillic О) is another name."""
    return unicodedata.normalize("NFC", name).casefold().strip()


_ACCESSORY = re.compile(
    r"\b(for|fits|fit for|compatible with|suitable for|works with|replacement for|"
    r"designed for|to fit)\s+(the\s+|your\s+|all\s+)?$")
_STYLE = re.compile(r"^\s*[-‐–]?\s*(style|type|look|like|inspired|alike)\b")


def is_accessory(title: str, brand_found: str) -> bool:
    """Third-party goods for the brand's products: "rain cover for Nordvik ...",
    "lid fits Nordvik ...", "compatible with Nordvik ..."."""
    text = fold(title)
    at = text.find(fold(brand_found))
    return at > 0 and _ACCESSORY.search(text[:at]) is not None


def brand_style(title: str, brand_found: str) -> str | None:
    """A tell when the brand is qualified as a look-alike: "Nordvik-style",
    "Nordvik type", "Nordvik look"."""
    text = fold(title)
    found = fold(brand_found)
    for at in (m.start() for m in re.finditer(re.escape(found), text)):
        match = _STYLE.match(text[at + len(found):])
        if match:
            return f"{found}-{match.group(1)}"
    return None


_USED = re.compile(r"\b(used|pre-?owned|second[- ]?hand|worn|gebraucht|occasion|usado|usato|"
                   r"refurbished)\b|б/у|二手|中古")


def is_used(title: str) -> bool:
    """Second-hand goods sell below retail for an honest reason."""
    return _USED.search(fold(title)) is not None
