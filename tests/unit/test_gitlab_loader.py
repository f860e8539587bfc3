"""The YAML loader keeps lines through anchors and merge keys; include globs; human timeouts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cijob.gitlab.errors import ConvertError, Pos
from cijob.gitlab.includes import glob_regex
from cijob.gitlab.loader import load_config, load_documents
from cijob.gitlab.nodes import Map, Reference, Seq, deep_merge
from cijob.gitlab.timeout import cijob_duration, parse_gitlab_duration


def test_lines_of_keys_items_and_merged_keys() -> None:
    [doc] = load_documents(
        ".t: &t\n  image: ruby\n  tags: [a]\njob:\n  <<: *t\n  script:\n    - one\n    - two\n",
        "f.yml",
    )
    job = doc["job"]
    assert isinstance(job, Map)
    assert job.at("image") == Pos("f.yml", 2)  # where the anchor wrote it
    assert job.at("script") == Pos("f.yml", 6)
    assert isinstance(job["script"], Seq) and job["script"].item_pos == [
        Pos("f.yml", 7),
        Pos("f.yml", 8),
    ]


def test_reference_tag_and_boolean_keys() -> None:
    [doc] = load_documents("a: !reference [.x, script, 0]\non: 1\n", "f.yml")
    assert doc["a"] == Reference((".x", "script", "0"), Pos("f.yml", 1))
    assert doc["true"] == 1  # YAML 1.1, as Psych reads it


@pytest.mark.parametrize("text", ["a: !reference x\n", "a: !reference []\n"])
def test_bad_reference_tags(text: str) -> None:
    with pytest.raises(ConvertError, match=re.escape("f.yml:1: error: !reference needs a list")):
        load_documents(text, "f.yml")


def test_spec_header_document_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text("spec:\n  inputs:\n    stage: {default: test}\n---\njob: {script: [x]}\n")
    warnings: list[object] = []
    config = load_config(path, "t.yml", warnings.append)
    assert list(config) == ["job"]
    assert [str(w) for w in warnings] == [
        "t.yml:1: warning: spec: inputs are not interpolated: $[[ inputs.* ]] stays as written"
    ]


def test_deep_merge_keeps_the_winning_lines() -> None:
    a, b = Map(Pos("a", 1)), Map(Pos("b", 1))
    inner_a, inner_b = Map(Pos("a", 2)), Map(Pos("b", 2))
    inner_a.put("X", "1", Pos("a", 3))
    inner_a.put("Y", "1", Pos("a", 4))
    inner_b.put("X", "2", Pos("b", 3))
    a.put("variables", inner_a, Pos("a", 2))
    a.put("script", Seq(Pos("a", 5), ["old"]), Pos("a", 5))
    b.put("variables", inner_b, Pos("b", 2))
    b.put("script", Seq(Pos("b", 5), ["new"]), Pos("b", 5))
    merged = deep_merge(a, b)
    assert merged["variables"] == {"X": "2", "Y": "1"}
    assert merged["variables"].at("X") == Pos("b", 3) and merged["variables"].at("Y") == Pos("a", 4)
    assert merged["script"] == ["new"]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("configs/*.yml", "configs/a.yml", True),
        ("configs/*.yml", "configs/sub/a.yml", False),
        ("configs/**.yml", "configs/sub/a.yml", True),
        ("configs/**/*.yml", "configs/a.yml", False),
        ("configs/**/*.yml", "configs/sub/deep/a.yml", True),
        ("ci/{build,test}.yml", "ci/test.yml", True),
        ("ci/job?.yml", "ci/job1.yml", True),
        ("ci/job[0-9].yml", "ci/jobx.yml", False),
    ],
)
def test_include_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).match(path)) is matches


@pytest.mark.parametrize("text", ["", "soon", "1 fortnight", "h"])
def test_unreadable_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_gitlab_duration(text)


def test_duration_round_trip() -> None:
    assert cijob_duration(parse_gitlab_duration("1 week 1s")) == "168h1s"
    assert cijob_duration(59) == "59s"
