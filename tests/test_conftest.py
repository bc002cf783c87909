"""The suite's rule for a clone without ``../shared``: only a missing shared path turns into a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.io import DataError
from framework.errors import UserError
from tests import conftest


def _wrapped(folder: Path) -> UserError:
    """A constructor's error as Hydra passes it on: the data set's one-line error is its cause."""
    try:
        try:
            raise DataError(f"image folder '{folder}/sr/T91' does not exist: check the path")
        except DataError as cause:
            raise UserError("module.net: could not build it") from cause
    except UserError as error:
        return error


def test_a_missing_shared_path_is_named_through_the_error_chain(monkeypatch, tmp_path: Path) -> None:
    absent = tmp_path / "shared" / "data"
    monkeypatch.setattr(conftest, "SHARED_DATA", absent)
    assert conftest.missing_shared_path(_wrapped(absent)) == f"{absent}/sr/T91"
    assert conftest.missing_shared_path(DataError(f"'{tmp_path}/elsewhere' does not exist")) is None


def test_nothing_is_skipped_where_the_shared_folders_exist(monkeypatch, tmp_path: Path) -> None:
    present = tmp_path / "data"
    present.mkdir()
    monkeypatch.setattr(conftest, "SHARED_DATA", present)
    monkeypatch.setattr(conftest, "SHARED_WEIGHTS", present)
    assert conftest.missing_shared_path(_wrapped(present)) is None


@pytest.mark.shared("data/no_such_folder_in_shared")
def test_the_shared_marker_skips_a_test_whose_path_is_absent() -> None:
    raise AssertionError("pytest_runtest_setup should have skipped this test")
