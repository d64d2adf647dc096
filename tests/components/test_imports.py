import subprocess
import sys

CODE = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import rasa_intent_student.components.featurizer as f
import rasa_intent_student.components.classifier as c
import rasa_intent_student
assert rasa_intent_student.StudentFeaturizer is f.StudentFeaturizer
assert rasa_intent_student.RouteClassifier is c.RouteClassifier
assert not any(name == "torch" or name.startswith("torch.") for name, m in sys.modules.items() if m is not None)
print("ok")
"""


def test_components_import_without_torch():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
