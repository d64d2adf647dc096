"""Language offsets: the part of a sentence embedding that says which language it is in.

A multilingual encoder puts every sentence of one language a little towards that
language's mean, and a sentence and its translation apart by the difference of their
languages' means. Removing that offset (Libovický et al. 2020, "On the Language
Neutrality of Pre-trained Multilingual Representations"; Yang et al. 2021) brings
translations together without any training: a classifier trained on English
examples then transfers better to the other languages, and a question finds a fact
stored in another language more often.

The language of a text is not given: each vector is compared with the language
directions and the offsets are mixed by a softmax over those cosines, so a short or
mixed text that looks like two languages gets part of each offset. Only the offset
from the global mean is removed (``vector - (mean[lang] - global_mean)``), so the
common component, and what every sentence shares, stays.

The means are fitted on a fixed multilingual sample (the package's route TRAIN
examples, about 240 a language) and stored beside the model
(``language_offsets.npy``, checksummed in ``student.json`` like the model files).
"""
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from rasa_intent_student.constants import LANGUAGE_OFFSETS_FILE, LANGUAGE_OFFSETS_TEMPERATURE
from rasa_intent_student.errors import IntegrityError, StudentError
from rasa_intent_student.pooling import normalize

Encode = Callable[[Sequence[str]], np.ndarray]


class LanguageOffsets:
    """Per-language mean embeddings and their removal.

    Args:
        languages: ISO 639-1 codes, one per row of ``means``.
        means: float (len(languages), dim): the mean unit embedding of each language's sample.
        temperature: of the softmax that weighs each language's offset by how much a vector looks like it.
    """

    def __init__(self, languages: Sequence[str], means: np.ndarray, temperature: float = LANGUAGE_OFFSETS_TEMPERATURE) -> None:
        means = np.asarray(means, dtype=np.float32)
        if means.ndim != 2 or means.shape[0] != len(languages) or len(languages) < 2:
            raise StudentError(f"Language offsets need one mean row per language and at least two languages; got "
                               f"{len(languages)} languages and means of shape {means.shape}.")
        if not np.isfinite(means).all():
            raise StudentError("Language means contain NaN or infinity; refit them.")
        if temperature <= 0:
            raise StudentError(f"temperature={temperature} must be > 0.")
        self.languages: Tuple[str, ...] = tuple(languages)
        self.means = means
        self.temperature = float(temperature)
        self.global_mean = means.mean(axis=0)
        self.offsets = means - self.global_mean  # (L, dim): what each language adds
        directions = normalize(self.offsets)
        # For _weights: every direction and the global mean in one matrix, and their constant parts.
        self._projection = np.ascontiguousarray(np.vstack([directions, self.global_mean[None]]).T)  # (dim, L + 1)
        self._global_dirs = directions @ self.global_mean  # (L,)
        self._global_sq = float(self.global_mean @ self.global_mean)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def fit(cls, encode: Encode, texts_by_language: Dict[str, Sequence[str]], **kwargs) -> "LanguageOffsets":
        """The mean unit embedding of each language's texts; ``encode`` returns (n, dim) raw embeddings."""
        empty = [lang for lang, texts in texts_by_language.items() if not texts]
        if empty:
            raise StudentError(f"No texts for languages {empty}; each language needs a sample to fit its offset.")
        languages = list(texts_by_language)
        means = np.stack([normalize(encode(list(texts_by_language[lang]))).mean(axis=0) for lang in languages])
        return cls(languages, means, **kwargs)

    def _weights(self, unit: np.ndarray) -> np.ndarray:
        """(n, L) softmax weights of unit rows: cosines of ``unit - global_mean`` with the language directions.

        Expanded so that one (n, L + 1) product does it: ``(u - g) . d = u . d - g . d`` and
        ``|u - g|^2 = 1 - 2 u . g + |g|^2`` (a single utterance is what has to be fast).
        """
        products = unit @ self._projection  # (n, L + 1): u . d for every direction, then u . g
        lengths = np.sqrt(np.maximum(1.0 - 2.0 * products[:, -1:] + self._global_sq, 1e-12))
        scores = (products[:, :-1] - self._global_dirs) / (lengths * self.temperature)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def weights(self, vectors: np.ndarray) -> np.ndarray:
        """(n, L): how much each vector looks like each language (rows sum to 1)."""
        return self._weights(normalize(vectors))

    def remove(self, vectors: np.ndarray, keep_length: bool = True) -> np.ndarray:
        """``vectors`` (n, dim) with their language offset removed, each keeping its length (``keep_length``)
        or unit length.

        Returns:
            a new float32 array of the same shape.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise StudentError(f"Expected vectors of shape (n, {self.dim}); got {vectors.shape}.")
        if not len(vectors):
            return vectors.copy()
        if len(vectors) == 1:
            return self._remove_one(vectors[0], keep_length)[None]
        lengths = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))[:, None]
        unit = vectors / np.maximum(lengths, 1e-12)
        neutral = unit - self._weights(unit) @ self.offsets
        neutral /= np.maximum(np.sqrt(np.einsum("ij,ij->i", neutral, neutral))[:, None], 1e-12)
        if keep_length:
            neutral *= lengths
        return neutral.astype(np.float32, copy=False)

    def _remove_one(self, vector: np.ndarray, keep_length: bool) -> np.ndarray:
        """``remove`` for one (dim,) vector with 1-D operations: half the numpy calls of the batch path, and one
        utterance at a time is the latency that matters (about 15 us instead of 47)."""
        length = max(float(np.sqrt(vector.dot(vector))), 1e-12)
        unit = vector / length
        products = unit.dot(self._projection)
        scale = 1.0 / (np.sqrt(max(1.0 - 2.0 * float(products[-1]) + self._global_sq, 1e-12)) * self.temperature)
        scores = (products[:-1] - self._global_dirs) * scale
        weights = np.exp(scores - scores.max())
        neutral = unit - (weights / weights.sum()).dot(self.offsets)
        neutral *= (length if keep_length else 1.0) / max(float(np.sqrt(neutral.dot(neutral))), 1e-12)
        return neutral.astype(np.float32, copy=False)

    def save(self, directory: Union[str, Path]) -> Path:
        """Write the means as ``language_offsets.npy`` (float32, no pickle); the manifest names the languages."""
        path = Path(directory) / LANGUAGE_OFFSETS_FILE
        np.save(path, self.means, allow_pickle=False)
        return path

    @classmethod
    def read(cls, data: bytes, path: Path, languages: Sequence[str], dim: int) -> "LanguageOffsets":
        """The offsets in ``data`` (the bytes of ``path``), checked against the manifest's languages and dim."""
        import io

        try:
            means = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise IntegrityError(f"Corrupt {path}: {e}. Refit it with `rasa-intent-student language-offsets "
                                 f"{path.parent}` or restore the file.") from e
        if means.shape != (len(languages), dim):
            raise IntegrityError(f"{path} holds means of shape {means.shape}, but student.json names {len(languages)} "
                                 f"languages of dim {dim}. Refit it with `rasa-intent-student language-offsets {path.parent}`.")
        return cls(languages, means)


def fit_student_offsets(directory: Union[str, Path], languages: Sequence[str] = (),
                        route_dir: Optional[Union[str, Path]] = None) -> LanguageOffsets:
    """Fit a student's language offsets on route TRAIN examples, write them beside the model, name them in its
    ``student.json`` and record their checksum (a student that had checksums keeps them all).

    Args:
        directory: a student model directory.
        languages: the languages to fit (default: every language the route examples have).
        route_dir: the route data (default: the package's examples).
    """
    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.manifest import StudentManifest, seal_student
    from rasa_intent_student.routes import available_languages, check_languages, load_routes

    directory = Path(directory)
    languages = check_languages(languages) if languages else list(available_languages("train", route_dir))
    encoder = StudentEncoder.load(directory)
    texts = {lang: [row.text for row in load_routes("train", [lang], route_dir)] for lang in languages}
    offsets = LanguageOffsets.fit(lambda batch: encoder.encode(batch, language_neutral=False), texts)
    offsets.save(directory)
    manifest = StudentManifest.load(directory).replace(language_offsets=tuple(languages))
    manifest.save(directory)
    if manifest.checksums:
        seal_student(directory)
    return offsets


def drop_student_offsets(directory: Union[str, Path]) -> None:
    """Remove a student's language offsets (file, manifest entry and checksum): ``encode`` is raw again."""
    from rasa_intent_student.manifest import StudentManifest

    directory = Path(directory)
    manifest = StudentManifest.load(directory)
    checksums = {name: digest for name, digest in manifest.checksums.items() if name != LANGUAGE_OFFSETS_FILE}
    manifest.replace(language_offsets=(), checksums=checksums).save(directory)
    (directory / LANGUAGE_OFFSETS_FILE).unlink(missing_ok=True)
