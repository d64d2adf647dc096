"""Shared fixtures for the runtime tests (run in .venv: rasa + onnxruntime, no torch)."""
import os
import shutil
from pathlib import Path

import pytest

from rasa_intent_student.constants import DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def student_dir() -> Path:
    """The student under test: the shipped default, or $RIS_TEST_STUDENT to test another build."""
    path = Path(os.environ.get("RIS_TEST_STUDENT", DEFAULT_MODEL_DIR))
    assert (path / "model.onnx").is_file(), f"no student at {path}; run `make model`"
    return path


@pytest.fixture(scope="session")
def encoder(student_dir):
    from rasa_intent_student.encoder import StudentEncoder

    return StudentEncoder.load(student_dir, threads=1)


@pytest.fixture
def student_copy(student_dir, tmp_path) -> Path:
    """A throwaway copy of the student directory, for tests that damage files."""
    target = tmp_path / "student"
    shutil.copytree(student_dir, target)
    return target
