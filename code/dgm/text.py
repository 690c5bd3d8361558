"""Characters as tokens: the corpus the language-model chapter trains on, and its tokenizer.

The corpus (``lm_corpus.txt`` beside this file) is this book's own prose: the Markdown sources of
its front page, its notation page and its chapters on NeRF, the instantaneous change of variables,
the ELBO and the VAE, in that order, with their front matter and code cells removed and runs of
blank lines shortened to one. It is part of the book and is distributed under the book's MIT
licence (the repository's ``LICENSE`` file).

A tokenizer maps text to integer ids and back. Here each character is one token, and one extra
token, BOS ("beginning of sequence", id 0), marks where a paragraph starts. The corpus is a run of
paragraphs separated by blank lines; :meth:`CharTokenizer.encode_corpus` replaces every blank-line
separator by BOS, so the encoded corpus reads

    BOS p_1 BOS p_2 BOS p_3 ...

and BOS plays two roles at once: the token x_0 that every paragraph is conditioned on, and the
"end of paragraph" prediction at the end of the one before.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from dgm.repro import note_file

CORPUS_PATH = Path(__file__).with_name("lm_corpus.txt")
"""The shipped corpus: plain UTF-8 text, paragraphs separated by blank lines."""

BOS = "\x02"
"""The beginning-of-sequence token (ASCII "start of text"); never a character of the corpus."""

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def load_corpus(path: str | Path = CORPUS_PATH) -> str:
    """The corpus text, with a clear error if it is missing, empty or contains BOS."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no corpus at {path}: the language-model chapter needs a plain UTF-8 text file; "
            "restore dgm/lm_corpus.txt from the repository or pass another path"
        )
    note_file(path, hashlib.sha256(path.read_bytes()).hexdigest())
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"the corpus at {path} is empty; it needs at least a paragraph of text")
    if BOS in text:
        raise ValueError(f"the corpus at {path} contains the reserved BOS character \\x02")
    return text


def paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs of ``text`` (separated by blank lines), stripped."""
    return [p.strip() for p in PARAGRAPH_BREAK.split(text) if p.strip()]


class CharTokenizer:
    """Characters <-> ids. Id 0 is BOS; the characters of the training text follow, sorted.

    ``encode`` refuses a character it has never seen (a character model has no id for it) and
    says which one; ``decode`` refuses an id outside the vocabulary.
    """

    def __init__(self, text: str):
        if not text:
            raise ValueError("a tokenizer needs a non-empty text to take its characters from")
        if BOS in text:
            raise ValueError("the text contains the reserved BOS character \\x02")
        self.chars = [BOS] + sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.bos_id = 0

    @property
    def vocab_size(self) -> int:
        """V: the number of distinct tokens, BOS included."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Text -> ids, one per character (no BOS added)."""
        unknown = sorted({ch for ch in text if ch not in self.stoi})
        if unknown:
            shown = ", ".join(repr(ch) for ch in unknown[:10])
            raise ValueError(
                f"{len(unknown)} character(s) not in the vocabulary: {shown}. A character-level "
                "model has no token for them; remove or replace them (the vocabulary is "
                "tokenizer.chars)."
            )
        return [self.stoi[ch] for ch in text]

    def decode(self, ids) -> str:
        """Ids -> text. A leading BOS is dropped; any other BOS becomes a blank line."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:10]} are outside the vocabulary 0..{self.vocab_size - 1}")
        if ids and ids[0] == self.bos_id:
            ids = ids[1:]
        return "".join("\n\n" if i == self.bos_id else self.chars[i] for i in ids)

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """A prompt as the model sees it: BOS then the prompt's characters, shape (1, 1 + len).

        The empty prompt is allowed and gives BOS alone: the model then writes a paragraph
        from its very beginning, x_1 ~ p(x_1 | BOS).
        """
        return torch.tensor([[self.bos_id, *self.encode(prompt)]], dtype=torch.long)  # (1, T)

    def encode_corpus(self, text: str) -> torch.Tensor:
        """The whole corpus as one long id tensor: BOS before every paragraph, shape (N,)."""
        ids: list[int] = []
        for paragraph in paragraphs(text):
            ids.append(self.bos_id)
            ids.extend(self.encode(paragraph))
        return torch.tensor(ids, dtype=torch.long)  # (N,)


def train_val_split(data: torch.Tensor, val_fraction: float = 0.1):
    """The first (1 - val_fraction) of the ids for training, the rest for validation.

    A contiguous split (not a random one): validation text is text the model has never seen
    any part of, so the validation loss measures generalisation, not memory.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    n_train = int(round(len(data) * (1.0 - val_fraction)))
    return data[:n_train], data[n_train:]
