"""Text heuristics and the near-duplicate search behind the curation filters.

Why: curation (`polychromic.data.curate`) needs a few judgements that are not one regular
expression: how many emoji a reply has, whether it shouts, which language it is in, and which
replies say the same thing in other words. Each is a small function here, testable alone.

- `count_emoji`: code points in the Unicode emoji blocks (skin-tone modifiers, variation
  selectors and zero-width joiners not counted, so a composed emoji may count more than once and
  a flag counts 2).
- `is_all_caps`: at least `ALL_CAPS_MIN_LETTERS` cased letters, of which at least
  `ALL_CAPS_RATIO` upper case ("LOL" is too short to shout; "NASA and ESA agree" does not).
- `longest_run`: the longest run of one repeated character, digits and spaces excluded
  ("soooooo", "!!!!!!", but not "1000000").
- `guess_language`: a light heuristic that needs no download: mostly non-Latin letters ->
  ``non-latin``; else counts of short function words of en, es, fr, de, pt, it, nl (words that
  are also English function words are left out of the others). `language_mismatch` says a
  reply is in another language only when it is fairly sure: mostly non-Latin letters, or at
  least 2 function words of another language and more than of the target one. Short or
  ambiguous replies are kept.
- `near_duplicates`: greedy, most-liked first: a reply whose embedding cosine with an already
  kept reply reaches the threshold is a near-duplicate of it. Memory stays O(n * d): the
  similarities are computed block by block (`BLOCK` rows against `KEPT_BLOCK` kept rows at a
  time), never as an n x n matrix.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ALL_CAPS_MIN_LETTERS = 8
ALL_CAPS_RATIO = 0.9
BLOCK = 512
KEPT_BLOCK = 8192

_EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F000, 0x1FAFF),  # mahjong ... symbols and pictographs extended-A (incl. flags)
    (0x2600, 0x27BF),    # miscellaneous symbols, dingbats
    (0x2300, 0x23FF),    # miscellaneous technical (watch, hourglass, ...)
    (0x2B00, 0x2BFF),    # arrows and stars
)
_NOT_COUNTED: tuple[tuple[int, int], ...] = (
    (0x1F3FB, 0x1F3FF),  # skin-tone modifiers
)


def count_emoji(text: str) -> int:
    """Emoji code points in `text` (modifiers, variation selectors and joiners not counted)."""
    count = 0
    for char in text:
        point = ord(char)
        if any(low <= point <= high for low, high in _NOT_COUNTED):
            continue
        if any(low <= point <= high for low, high in _EMOJI_RANGES):
            count += 1
    return count


def is_all_caps(text: str) -> bool:
    """Shouting: enough cased letters, nearly all upper case."""
    cased = [char for char in text if char.isupper() or char.islower()]
    if len(cased) < ALL_CAPS_MIN_LETTERS:
        return False
    return sum(char.isupper() for char in cased) / len(cased) >= ALL_CAPS_RATIO


_RUN = re.compile(r"([^\s\d])\1*")


def longest_run(text: str) -> int:
    """Length of the longest run of one repeated character (spaces and digits excluded)."""
    return max((len(match.group(0)) for match in _RUN.finditer(text)), default=0)


_FUNCTION_WORDS: dict[str, str] = {
    "en": "the and is are was were you your i my me we our they their it its this that these "
          "those to of for with on at from by about but not what how why when just so really "
          "have has had be been do does did can will would should could if or an a all any "
          "more there here too very than then get like know think no yes he she him her his "
          "them as in out up",
    "es": "el la los las del que y un una por para con es pero muy porque como más también "
          "está esta este esto lo se su sus al yo tu mi qué cómo pues ya sí hay estoy eso "
          "nada todo bien gracias",
    "fr": "le les des est et une pour pas je vous nous avec que qui dans sur ce cette mais "
          "très du au aux il elle ils sont ça oui merci bien tout rien mon ma mes ton ta",
    "de": "der die das und ist nicht ich du ein eine einen mit auf für sehr auch aber wie zu "
          "den dem sie es wir ihr mein dein sind haben noch schon doch ja nein danke gut wenn "
          "oder",
    "pt": "os um uma não com para que é muito mas mais isso eu você do da dos das no na em ao "
          "se sim obrigado tudo bem meu minha",
    "it": "il lo gli della che è non per sono una con ma molto anche questo questa io ho hai "
          "ha del nel alla perché grazie sì tutto bene mio mia",
    "nl": "de het een en ik niet dat van voor met zijn maar ook wat je jij wij er op te naar "
          "dit heel goed dank bedankt nog",
}
ENGLISH_WORDS = frozenset(_FUNCTION_WORDS["en"].split())
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    code: frozenset(words.split()) - (frozenset() if code == "en" else ENGLISH_WORDS)
    for code, words in _FUNCTION_WORDS.items()
}
LANGUAGES: tuple[str, ...] = tuple(FUNCTION_WORDS)
_WORD = re.compile(r"[^\W\d_]+")


def _latin_fraction(text: str) -> tuple[float, int]:
    """The share of Latin letters among the letters of `text`, and how many letters it has."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return 1.0, 0
    latin = sum(unicodedata.name(char, "").startswith("LATIN") for char in letters)
    return latin / len(letters), len(letters)


def language_scores(text: str) -> dict[str, int]:
    """Function words of each language found in `text`."""
    words = _WORD.findall(text.casefold())
    return {code: sum(word in vocabulary for word in words)
            for code, vocabulary in FUNCTION_WORDS.items()}


def guess_language(text: str) -> str | None:
    """``non-latin``, a language code, or None when the text says too little."""
    latin, letters = _latin_fraction(text)
    if letters >= 3 and latin < 0.5:
        return "non-latin"
    scores = language_scores(text)
    best = max(scores.values())
    if best == 0:
        return None
    leaders = [code for code, score in scores.items() if score == best]
    return leaders[0] if len(leaders) == 1 else None


def language_mismatch(text: str, target: str) -> str | None:
    """The language `text` is in when it is fairly surely not `target`, else None."""
    latin, letters = _latin_fraction(text)
    if letters >= 3 and latin < 0.5:
        return "non-latin"
    scores = language_scores(text)
    other = max((code for code in scores if code != target), key=lambda code: scores[code])
    if scores[other] >= 2 and scores[other] > scores[target]:
        return other
    return None


Encoder = Callable[[list[str]], np.ndarray]


def _encode_unique(texts: Sequence[str], encode: Encoder) -> tuple[np.ndarray, list[int]]:
    """Unit embeddings of the distinct texts, and the row of each input text.

    The distinct texts are encoded shortest first (less padding).
    """
    distinct: dict[str, int] = {}
    rows = [distinct.setdefault(text, len(distinct)) for text in texts]
    unique = list(distinct)
    order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
    encoded = np.asarray(encode([unique[i] for i in order]), dtype=np.float32)
    if encoded.shape[0] != len(unique):
        raise ValueError(f"encoder returned {encoded.shape[0]} vectors for {len(unique)} texts")
    embeddings = np.empty_like(encoded)
    embeddings[order] = encoded
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12), rows


def _greedy(order: list[int], vectors: np.ndarray, threshold: float,
            found: dict[int, tuple[int, float]]) -> None:
    """Keep `order` (most-liked first) unless close to a kept one; fill `found` with drops.

    `vectors[i]` is the unit embedding of `order[i]`.
    """
    dim = vectors.shape[1]
    kept_rows = np.empty((len(order), dim), dtype=np.float32)
    kept_ids: list[int] = []
    for start in range(0, len(order), BLOCK):
        block = vectors[start:start + BLOCK]
        best_sim = np.full(len(block), -np.inf, dtype=np.float32)
        best_row = np.zeros(len(block), dtype=np.int64)
        for kept_start in range(0, len(kept_ids), KEPT_BLOCK):
            sims = block @ kept_rows[kept_start:min(len(kept_ids),
                                                    kept_start + KEPT_BLOCK)].T
            arg = sims.argmax(axis=1)
            value = sims[np.arange(len(block)), arg]
            better = value > best_sim
            best_sim[better] = value[better]
            best_row[better] = arg[better] + kept_start
        inner = block @ block.T
        kept_here: list[int] = []
        for j in range(len(block)):
            sim, match = float(best_sim[j]), (kept_ids[best_row[j]] if kept_ids else -1)
            if kept_here:
                local = inner[j, kept_here]
                at = int(local.argmax())
                if float(local[at]) > sim:
                    sim, match = float(local[at]), order[start + kept_here[at]]
            if sim >= threshold:
                found[order[start + j]] = (match, sim)
            else:
                kept_here.append(j)
        kept_rows[len(kept_ids):len(kept_ids) + len(kept_here)] = block[kept_here]
        kept_ids.extend(order[start + j] for j in kept_here)


def near_duplicates(
    texts: Sequence[str],
    likes: Sequence[float],
    threshold: float,
    encode: Encoder,
    groups: Sequence[Any] | None = None,
) -> tuple[dict[int, tuple[int, float]], dict[str, Any]]:
    """{index: (index of the kept reply, cosine)} of every near-duplicate, and timings.

    Within each group (all texts when `groups` is None) the most-liked text is kept first (ties:
    the earlier one), then each next text unless its cosine with a kept one is >= `threshold`.
    Groups of one text need no embedding.
    """
    started = time.perf_counter()
    members: dict[Any, list[int]] = {}
    for index in range(len(texts)):
        members.setdefault(None if groups is None else groups[index], []).append(index)
    needed = sorted(i for indices in members.values() if len(indices) > 1 for i in indices)
    found: dict[int, tuple[int, float]] = {}
    info: dict[str, Any] = {"compared": len(needed), "encoded_texts": 0, "encode_seconds": 0.0,
                            "compare_seconds": 0.0}
    if not needed:
        return found, info
    embeddings, rows = _encode_unique([texts[i] for i in needed], encode)
    row_of = dict(zip(needed, rows, strict=True))
    encoded = time.perf_counter()
    for indices in members.values():
        if len(indices) < 2:
            continue
        order = sorted(indices, key=lambda i: (-float(likes[i]), i))
        _greedy(order, embeddings[[row_of[i] for i in order]], threshold, found)
    info.update(encoded_texts=int(embeddings.shape[0]),
                encode_seconds=round(encoded - started, 3),
                compare_seconds=round(time.perf_counter() - encoded, 3))
    return found, info
