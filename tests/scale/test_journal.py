"""The run journal: write-once results, tied to the settings they were made with, never someone else's folder."""

from __future__ import annotations

import pytest

from lmeec.scale.journal import UnitJournal


def test_results_are_written_once_and_read_back(tmp_path):
    journal = UnitJournal(tmp_path / "j", {"engines": "/e", "take": ["a", "b"]})
    assert journal.save("t1/obj", [[0, {"size": [2, 2], "counts": "04"}, 1.0]])
    assert not journal.save("t1/obj", [[0, "another result"]])  # a duplicate is dropped
    assert journal.load("t1/obj") == [[0, {"size": [2, 2], "counts": "04"}, 1.0]]
    again = UnitJournal(tmp_path / "j", {"engines": "/e", "take": ("a", "b")})  # same settings: continue
    assert again.done(["t1/obj", "t2/obj"]) == {"t1/obj"}
    again.remove()
    assert not (tmp_path / "j").exists()


def test_other_settings_are_refused_with_the_differences(tmp_path):
    UnitJournal(tmp_path / "j", {"engines": "/e", "confidence": "area"}).save("k", 1)
    with pytest.raises(ValueError, match=r"other settings \(confidence\)"):
        UnitJournal(tmp_path / "j", {"engines": "/e", "confidence": "score"})


def test_a_folder_lmeec_did_not_write_is_left_alone(tmp_path):
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an lmeec run journal"):
        UnitJournal(tmp_path / "j", {})
    assert (tmp_path / "j" / "notes.txt").read_text() == "mine"


def test_an_entry_for_another_key_is_refused(tmp_path):
    journal = UnitJournal(tmp_path / "j", {})
    journal.save("a", 1)
    path = journal._path("a")
    path.write_text(path.read_text().replace('"a"', '"b"'))
    with pytest.raises(ValueError, match="not the journal entry of unit 'a'"):
        journal.load("a")
