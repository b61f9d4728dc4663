"""``check_out_dir`` / ``check_out_file``: output paths no run could write are refused up
front, and checking leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvlrp.infra.safe_paths import check_out_dir, check_out_file, filesystem_type


def test_a_writable_folder_passes_and_the_check_leaves_nothing(tmp_path):
    assert check_out_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == []  # not created; no probe left
    (tmp_path / "old").mkdir()
    check_out_dir(tmp_path / "old")
    assert list((tmp_path / "old").iterdir()) == []


def test_files_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="f is a file, not a folder"):
        check_out_dir(tmp_path / "f", "--out")
    with pytest.raises(ValueError, match="f is a file, not a folder"):
        check_out_dir(tmp_path / "f" / "below")
    with pytest.raises(ValueError, match="is a folder; name a file"):
        check_out_file(tmp_path)
    with pytest.raises(ValueError, match="f is a file, not a folder"):
        check_out_file(tmp_path / "f" / "m.csv")


def test_an_unwritable_folder(unwritable_dir):
    with pytest.raises(ValueError, match=r"--data-out .*cannot write in .*locked"):
        check_out_dir(unwritable_dir / "a" / "b", "--data-out")


@pytest.mark.skipif(not Path("/proc/self/mountinfo").is_file(), reason="no /proc here")
def test_pseudo_filesystems(tmp_path):
    assert filesystem_type("/proc/self") == "proc"
    assert filesystem_type(tmp_path) not in ("proc", "sysfs", None)
    for path in ("/proc/kvlrp", "/sys/kvlrp/out"):
        with pytest.raises(ValueError, match="pseudo-filesystem"):
            check_out_dir(path)


def test_urls_are_not_checked():
    assert str(check_out_dir("gs://bucket/out")) == "gs://bucket/out"
