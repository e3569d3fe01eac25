"""WordNet 3.0 nouns from Princeton's own files (``data.noun``, ``index.noun``), no nltk.

Only what tags need: each noun synset's lemmas and hypernyms. A synset's id is ``n`` plus its
8-digit byte offset in ``data.noun``: exactly the ImageNet class id (n02124075 = Egyptian cat),
which is why it must be WordNet 3.0 (3.1 moved the offsets). Read at build time, in about a
second; workers only see the tags.json written from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class WordNetError(ValueError):
    """A WordNet file that is not what this reader expects, or an unknown synset."""


@dataclass
class Nouns:
    """The noun synsets of one WordNet dict folder."""

    lemmas: dict[str, list[str]] = field(default_factory=dict)  # id -> lemmas, first is its name
    hypernyms: dict[str, list[str]] = field(default_factory=dict)  # id -> '@' and '@i' targets
    by_name: dict[str, str] = field(default_factory=dict)  # "cat.n.01" -> id
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, folder: Path) -> Nouns:
        """Parse ``folder/data.noun`` and ``folder/index.noun``."""
        nouns = cls()
        for number, line in _entries(folder / "data.noun"):
            fields = line.partition(" | ")[0].split()
            try:
                words = int(fields[3], 16)
                lemmas = [fields[4 + 2 * k] for k in range(words)]
                at = 4 + 2 * words
                pointers = [fields[at + 1 + 4 * k : at + 5 + 4 * k] for k in range(int(fields[at]))]
            except (IndexError, ValueError):
                bad = f"data.noun line {number} is not a synset: {line[:60]!r}"
                raise WordNetError(bad) from None
            synset = "n" + fields[0]
            nouns.lemmas[synset] = lemmas
            nouns.hypernyms[synset] = [
                "n" + offset
                for symbol, offset, pos, _ in pointers
                if symbol in ("@", "@i") and pos == "n"
            ]
        for _, line in _entries(folder / "index.noun"):
            fields = line.split()
            count = int(fields[2])
            for sense, offset in enumerate(fields[-count:], start=1):
                nouns.by_name[f"{fields[0]}.n.{sense:02d}"] = "n" + offset
        return nouns

    def resolve(self, name: str) -> str:
        """The id of ``name``: an id itself, or an nltk-style name such as ``cat.n.01``."""
        synset = name if name in self.lemmas else self.by_name.get(name.lower())
        if synset is None:
            raise WordNetError(f"{name!r} is no WordNet 3.0 noun synset")
        return synset

    def ancestors(self, synset: str) -> frozenset[str]:
        """``synset`` and every synset above it."""
        known = self._ancestors.get(synset)
        if known is None:
            found = {synset}
            for parent in self.hypernyms.get(synset, []):
                found |= self.ancestors(parent)
            known = self._ancestors[synset] = frozenset(found)
        return known


def _entries(path: Path) -> list[tuple[int, str]]:
    """The lines of a WordNet database file after its licence header (lines starting "  ")."""
    if not path.is_file():
        raise WordNetError(f"{path} does not exist")
    lines = path.read_text(encoding="latin-1").splitlines()
    return [
        (i, line) for i, line in enumerate(lines, start=1) if line and not line.startswith("  ")
    ]
