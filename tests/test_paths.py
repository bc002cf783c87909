"""framework.paths resolves the shared folders as conf/paths/default.yaml does for run.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.paths import PROJECT_ROOT, shared_data_dir, shared_weights_dir
from models.mobilenet_v2 import DEFAULT_TFLITE_FILE, default_weights_path
from tests.conftest import compose_config


def test_the_shared_folders_are_the_configs_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGING_LAB_SHARED_WEIGHTS", str(tmp_path / "weights"))
    paths = compose_config([]).paths
    assert Path(paths.shared_data_dir) == shared_data_dir()
    assert Path(paths.shared_weights_dir) == shared_weights_dir() == tmp_path / "weights"


def test_without_the_variables_the_folders_lie_beside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGING_LAB_SHARED_DATA", raising=False)
    monkeypatch.delenv("IMAGING_LAB_SHARED_WEIGHTS", raising=False)
    assert shared_data_dir() == PROJECT_ROOT.parent / "shared" / "data"
    assert shared_weights_dir() == PROJECT_ROOT.parent / "shared" / "weights"


def test_the_environment_variables_move_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGING_LAB_SHARED_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGING_LAB_SHARED_WEIGHTS", str(tmp_path / "weights"))
    assert shared_data_dir() == tmp_path / "data"
    assert default_weights_path() == tmp_path / "weights" / DEFAULT_TFLITE_FILE
