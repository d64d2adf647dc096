"""What ``StudentEncoder`` accepts and how it batches: text lists, batch sizes, an optional progress bar."""
import logging
from typing import Iterable, Iterator, List, Optional, Sequence, TypeVar, Union

from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def as_text_list(texts: Union[str, Iterable[str]]) -> List[str]:
    """Accept one string or an iterable of strings; reject anything else by position."""
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError("texts is None; pass a string or a list of strings.")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str; every text must be a string.")
    return items


def check_batch_size(batch_size: int) -> None:
    """Raise StudentError unless ``batch_size`` is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise StudentError(f"batch_size={batch_size} is invalid; use a positive integer.")


def check_threads(threads: Optional[int], none_means: str) -> None:
    """Raise StudentError unless ``threads`` is None or a positive integer; ``none_means``: what None gives."""
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise StudentError(f"threads={threads} is invalid; use a positive integer, or None for {none_means}.")


def iter_batch(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def progress(items: List[T], enabled: Optional[bool]) -> Iterable[T]:
    """``items``, behind a tqdm bar when ``enabled`` and tqdm is installed."""
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        logger.warning("show_progress_bar needs tqdm (pip install tqdm); encoding without a progress bar.")
        return items
    return tqdm(items, desc="Batches", unit="batch")
