"""Atomic writes: the target holds the old or the new content, never a part; no temporary file is left."""

from __future__ import annotations

import os

import pytest

from motif.files import atomic_write, atomic_write_text, temporary_path


def test_temporary_path_is_hidden_next_to_the_target_and_names_tag_and_pid(tmp_path):
    target = tmp_path / "manifest.json"
    assert temporary_path(target) == tmp_path / f".manifest.json.{os.getpid()}.tmp"
    assert temporary_path(target, "rank3") == tmp_path / f".manifest.json.rank3.{os.getpid()}.tmp"


def test_atomic_write_text_replaces_the_content(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_content_and_removes_the_temporary_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target, tag="main") as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_failed_first_write_leaves_no_file(tmp_path):
    target = tmp_path / "new.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as temporary:
            temporary.write_text("{")
            raise KeyboardInterrupt
    assert not list(tmp_path.iterdir())
