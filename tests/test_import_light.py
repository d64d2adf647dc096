"""The runtime must not need torch, and `import rasa_intent_student` must stay cheap."""
import subprocess
import sys

import pytest


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_package_import_pulls_in_no_heavy_library():
    result = run_python(
        "import sys, rasa_intent_student\n"
        "heavy = [m for m in ('torch', 'rasa', 'onnxruntime', 'tensorflow') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_encoder_works_with_torch_blocked(student_dir):
    result = run_python(
        "import sys; sys.modules['torch'] = None\n"
        "from rasa_intent_student import StudentEncoder\n"
        f"print(StudentEncoder.load({str(student_dir)!r}).encode(['hi']).shape)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("(1, ")


def test_factory_without_torch_says_which_extra_to_install():
    result = run_python(
        "import sys; sys.modules['torch'] = None\n"
        "import rasa_intent_student.factory"
    )
    if result.returncode == 0:
        pytest.fail("importing the factory without torch should fail with an install hint")
    assert 'pip install "rasa-intent-student[factory]"' in result.stderr
