"""Tags a user searches by ("Cat", "Food", "Beach"), derived from a classifier's classes.

A model's concept file (``models/<name>/concepts.toml``) names a few dozen photo-library
concepts by WordNet synsets; every ImageNet class is a WordNet synset, so a class belongs to a
concept when the concept's synset is among the class's hypernyms. `darkroom models build` works
this out once (``build_table``) and writes it as tags.json beside the model; the classify runner
turns each photo's class probabilities into tag scores with it.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.models.manifest import Tags
from streams.models.sources import find_package_file, sha256_file
from streams.models.wordnet import Nouns, WordNetError


class ConceptError(WordNetError):
    """A concept file that names an unknown synset, class or parent, or has a parent cycle."""


@dataclass(frozen=True)
class TagTable:
    """Each class's concepts, and each concept's parents (transitive, nearest first)."""

    parents: dict[str, list[str]]  # concept -> its ancestors
    classes: list[list[str]]  # class index -> its concepts, ancestors included

    def to_json(self) -> dict[str, Any]:
        """What tags.json holds."""
        return {"concepts": self.parents, "classes": self.classes}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TagTable:
        """The table tags.json holds."""
        return cls(dict(raw["concepts"]), [list(names) for names in raw["classes"]])


@dataclass(frozen=True)
class Concept:
    """One entry of a concept file, resolved to WordNet ids."""

    synsets: frozenset[str]
    extra: frozenset[str]  # classes it gets although WordNet files them elsewhere
    exclude: frozenset[str]  # synsets whose classes it does not get
    parents: tuple[str, ...]


def build_for(tags: Tags, folder: Path) -> TagTable:
    """The tag table a manifest's [tags] describes (``folder``: the model folder)."""
    wordnet = find_package_file(
        tags.wordnet.package, tags.wordnet.file, tags.wordnet.package_version
    )
    classes = find_package_file(tags.class_ids.package, tags.class_ids.file)
    return build_table(folder / tags.concepts, wordnet.parent, read_class_ids(classes))


def fingerprint(tags: Tags, folder: Path) -> str:
    """What a build of these tags depends on, so an edited concept file rebuilds."""
    return f"{sha256_file(folder / tags.concepts)}:{tags.model_dump_json()}"


def build_table(concepts_file: Path, wordnet_folder: Path, class_ids: list[str]) -> TagTable:
    """The tag table of the classes ``class_ids`` (WordNet ids, in class index order)."""
    nouns = _nouns(wordnet_folder)
    missing = [synset for synset in class_ids if synset not in nouns.lemmas]
    if missing:
        raise ConceptError(f"{len(missing)} class ids are not WordNet 3.0 nouns: {missing[:5]}")
    concepts = load_concepts(concepts_file, nouns, class_ids)
    ancestry = {name: _ancestry(concepts, name, ()) for name in concepts}
    classes = []
    for synset in class_ids:
        above = nouns.ancestors(synset)
        direct = [
            name
            for name, concept in concepts.items()
            if not above & concept.exclude and (above & concept.synsets or synset in concept.extra)
        ]
        found = dict.fromkeys(direct)
        for name in direct:
            found.update(dict.fromkeys(ancestry[name]))
        classes.append(sorted(found))
    return TagTable(ancestry, classes)


def load_concepts(path: Path, nouns: Nouns, class_ids: list[str]) -> dict[str, Concept]:
    """The concept file at ``path``, each name resolved against WordNet and the classes."""
    try:
        raw: dict[str, dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8"))["concept"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise ConceptError(f"{path}: not a concept file ({exc})") from exc
    by_lemma: dict[str, set[str]] = {}
    for synset in class_ids:
        for lemma in nouns.lemmas[synset]:
            by_lemma.setdefault(lemma.lower(), set()).add(synset)

    def synset_of(name: str, lemmas_too: bool) -> str:
        if lemmas_too and ".n." not in name and name not in nouns.lemmas:
            hits = by_lemma.get(name.lower().replace(" ", "_"), set())
            if len(hits) != 1:
                raise ConceptError(f"{path}: {name!r} names {len(hits)} of the classes, not 1")
            return next(iter(hits))
        try:
            return nouns.resolve(name)
        except WordNetError as exc:
            raise ConceptError(f"{path}: {exc}") from None

    concepts = {
        name: Concept(
            synsets=frozenset(synset_of(s, False) for s in entry.get("synsets", [])),
            extra=frozenset(synset_of(s, True) for s in entry.get("extra", [])),
            exclude=frozenset(synset_of(s, True) for s in entry.get("exclude", [])),
            parents=tuple(entry.get("parents", [])),
        )
        for name, entry in raw.items()
    }
    for name, concept in concepts.items():
        if "/" in name or not name.strip():
            raise ConceptError(f"{path}: {name!r}: a tag name is not empty and has no '/'")
        unknown = [p for p in concept.parents if p not in concepts]
        if unknown:
            raise ConceptError(f"{path}: {name}'s parents {unknown} are not concepts")
        outside = concept.extra - set(class_ids)
        if outside:
            raise ConceptError(f"{path}: {name}'s extra {sorted(outside)} are not classes")
    return concepts


def _ancestry(concepts: Mapping[str, Concept], name: str, path: tuple[str, ...]) -> list[str]:
    """``name``'s parents, then theirs, each once (ConceptError on a cycle)."""
    if name in path:
        raise ConceptError(f"concept parents form a cycle: {' -> '.join((*path, name))}")
    found: dict[str, None] = {}
    for parent in concepts[name].parents:
        found[parent] = None
    for parent in concepts[name].parents:
        found.update(dict.fromkeys(_ancestry(concepts, parent, (*path, name))))
    return list(found)


@functools.cache
def _nouns(folder: Path) -> Nouns:
    """WordNet read once per process (a second, for each model with tags and each test)."""
    return Nouns.read(folder)


def read_class_ids(path: Path) -> list[str]:
    """A JSON object of class index -> WordNet id, as a list in index order."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [str(raw[str(i)]) for i in range(len(raw))]
