"""Token vectors of one text, mapped back to the text's own characters (``StudentEncoder.encode_tokens``)."""
from typing import Any, List, NamedTuple, Sequence, Tuple

import numpy as np


class TokenEmbeddings(NamedTuple):
    """Token vectors of one text, without special and prefix tokens.

    Attributes:
        vectors: float32 array of shape (t, dim).
        offsets: t (start, end) character spans into the original text.
        sentence: float32 array of shape (dim,), the text's sentence embedding.
    """

    vectors: np.ndarray
    offsets: List[Tuple[int, int]]
    sentence: np.ndarray


def content_tokens(encoding: Any, mask: Sequence[int], text: str, prefix_chars: int) -> Tuple[List[int], List[Tuple[int, int]]]:
    """Positions of the tokens of ``text`` itself in a tokenizer ``encoding`` of prefix + text, and their spans in ``text``.

    Special tokens, padding (``mask`` 0) and the tokens of the prefix are left out.
    """
    keep, offsets = [], []
    for j, ((start, end), special) in enumerate(zip(encoding.offsets, encoding.special_tokens_mask)):
        if special or not mask[j] or end <= prefix_chars:
            continue
        start, end = max(start - prefix_chars, 0), end - prefix_chars
        # Metaspace pieces ("▁a") cover the space before the word; start at the word.
        while start < end - 1 and text[start].isspace():
            start += 1
        keep.append(j)
        offsets.append((start, end))
    return keep, offsets
