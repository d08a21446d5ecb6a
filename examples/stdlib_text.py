"""Text for the character-level examples: Python source from the standard library.

The corpus is the ``.py`` files of a few standard-library packages, read in a
fixed order from the running interpreter's own ``stdlib`` directory, so every
installation has it and no download is needed. Characters outside printable
ASCII become ``?``.
"""

from __future__ import annotations

import math
import os
import sysconfig

import numpy as np

PACKAGES = ("json", "email", "http", "logging", "concurrent", "importlib", "urllib", "xml")


def load_corpus(max_chars: int = 400_000, packages=PACKAGES) -> str:
    """Up to ``max_chars`` characters of source, whole files in sorted path order."""
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for package in packages:
        top = os.path.join(root, package)
        for directory, subdirs, names in os.walk(top):
            subdirs[:] = sorted(d for d in subdirs if d not in ("test", "tests", "__pycache__"))
            files.extend(os.path.join(directory, n) for n in sorted(names) if n.endswith(".py"))
    if not files:
        raise FileNotFoundError(f"no standard-library sources under {root}")
    parts, size = [], 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        parts.append(text)
        size += len(text)
        if size >= max_chars:
            break
    text = "".join(parts)[:max_chars]
    return "".join(c if c == "\n" or " " <= c <= "~" else "?" for c in text)


class Vocab:
    """The characters of a corpus, as integer ids in sorted order."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index[c] for c in text], np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Bits per character of the best model that ignores context."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def windows(ids: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping (input, next-character target) pairs of ``length`` characters."""
    n = (len(ids) - 1) // length
    x = ids[: n * length].reshape(n, length)
    y = ids[1 : n * length + 1].reshape(n, length)
    return x, y


def prepare(max_chars: int, length: int, holdout: float = 0.1):
    """Vocabulary, train windows, held-out windows and the unigram entropy of the corpus."""
    text = load_corpus(max_chars)
    vocab = Vocab(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1 - holdout))
    train, held_out = windows(ids[:cut], length), windows(ids[cut:], length)
    return vocab, train, held_out, unigram_entropy(ids[:cut], len(vocab))


def bits(nats: float) -> float:
    return nats / math.log(2)
