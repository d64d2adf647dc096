"""The console script: explicit command registration, user errors, `route` and `encode` (real student, real files)."""
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from rasa_intent_student import cli
from rasa_intent_student.commands import encode as encode_command, route as route_command


def test_commands_are_registered_explicitly(capsys):
    names = [m.__name__.rsplit(".", 1)[-1] for m in cli.COMMANDS]
    assert names == ["build", "distill", "reference", "language_offsets", "evaluate", "bench", "encode", "route"]
    parser = cli.make_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    # One subcommand per module (module language_offsets serves `language-offsets`): no phantom entry, none skipped.
    assert sorted(subparsers.choices) == sorted(n.replace("_", "-") for n in names)


def test_user_errors_print_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys, tmp_path):
    # Real user errors: a StudentError (bad option) and a FileNotFoundError (missing input).
    assert cli.main(["encode", "x", "--batch-size", "0", "-o", str(tmp_path / "v.npy")]) == 1
    assert capsys.readouterr().err.strip() == "error: --batch-size 0 is invalid; use a positive integer."
    assert cli.main(["encode", "--input", str(tmp_path / "none.txt"), "-o", str(tmp_path / "v.npy")]) == 1
    assert capsys.readouterr().err.startswith("error: --input")

    def buggy(args):  # a stand-in for a bug inside a command: a plain ValueError is not a user error
        raise ValueError("shapes (3,) and (4,) not aligned")

    monkeypatch.setattr(encode_command, "run", buggy)
    with pytest.raises(ValueError, match="not aligned"):
        cli.main(["encode", "x", "-o", str(tmp_path / "v.npy")])


def test_commands_get_the_command_line_as_typed(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(encode_command, "run", lambda args: seen.append(args.command_line) or 0)
    assert cli.main(["-v", "encode", "two words", "-o", str(tmp_path / "v.npy")]) == 0
    assert seen == [f"rasa-intent-student -v encode 'two words' -o {tmp_path / 'v.npy'}"]


def test_factory_commands_show_their_help_without_torch(capsys):
    """`reference` and `build` import the factory (torch) only when they run."""
    for name in ("reference", "build"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert "--work-dir" in capsys.readouterr().out


def test_encode_arguments_to_npy(encoder, tmp_path, capsys):
    out = tmp_path / "vectors.npy"
    texts = ["book a table", "", "¿qué pedí ayer?"]
    assert cli.main(["encode", *texts, "--output", str(out)]) == 0
    vectors = np.load(out)
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    assert (vectors * encoder.encode(texts)).sum(axis=1).min() > 0.999
    assert f"wrote 3 vectors of dim {encoder.dim}" in capsys.readouterr().err


def test_encode_file_and_stdin_one_text_per_line(encoder, tmp_path, monkeypatch):
    source = tmp_path / "texts.txt"
    source.write_bytes("hello\r\n\nbad \xff utf-8\nlast".encode("utf-8").replace("\xff".encode("utf-8"), b"\xff"))
    out = tmp_path / "from_file"
    assert cli.main(["encode", "--input", str(source), "-o", str(out), "--prompt", "passage: ", "--no-normalize"]) == 0
    vectors = np.load(tmp_path / "from_file.npy")
    expected = encoder.encode(["hello", "", "bad \ufffd utf-8", "last"], prompt="passage: ", normalize_embeddings=False)
    assert vectors.shape == (4, encoder.dim)
    np.testing.assert_allclose(vectors, expected, atol=0.05)

    monkeypatch.setattr("sys.stdin", io.StringIO("one\ntwo\n"))
    assert cli.main(["encode", "-o", str(tmp_path / "stdin.npy")]) == 0
    assert np.load(tmp_path / "stdin.npy").shape == (2, encoder.dim)


def test_encode_user_errors(tmp_path, capsys, student_copy):
    assert cli.main(["encode", "x", "--input", "f.txt", "-o", str(tmp_path / "v.npy")]) == 1
    assert "either as arguments or with --input" in capsys.readouterr().err
    assert cli.main(["encode", "--input", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "v.npy")]) == 1
    assert "missing.txt does not exist" in capsys.readouterr().err
    assert cli.main(["encode", "x", "-o", str(tmp_path / "no" / "dir" / "v.npy")]) == 1
    assert "does not exist" in capsys.readouterr().err
    # A damaged student is a user error that names the file, not a traceback.
    path = student_copy / "student.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "dim": 768}), encoding="utf-8")
    assert cli.main(["encode", "x", "--model", str(student_copy), "-o", str(tmp_path / "v.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "student.json says dim=768" in err


def test_split_lines():
    assert encode_command.split_lines("a\r\nb\n\nc\n") == ["a", "b", "", "c"]
    assert encode_command.split_lines("") == []


@pytest.fixture(scope="module")
def router_cache(tmp_path_factory):
    previous = os.environ.get(route_command.CACHE_ENV)
    os.environ[route_command.CACHE_ENV] = str(tmp_path_factory.mktemp("router-cache"))
    yield os.environ[route_command.CACHE_ENV]
    if previous is None:
        del os.environ[route_command.CACHE_ENV]
    else:
        os.environ[route_command.CACHE_ENV] = previous


@pytest.mark.slow  # the first call fits the router on the shipped route examples (several seconds)
def test_route_prints_route_and_confidences_then_uses_the_cache(router_cache, capsys):
    texts = ["book a table for two at 7", "what did I order last week?", "hello there!", "지난번 주문 뭐였지?"]
    assert cli.main(["route", *texts]) == 0
    out, err = capsys.readouterr()
    assert "Fitting the router" in err
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["action", "recall", "other", "recall"]
    assert all(line.endswith(text) for line, text in zip(lines, texts))
    assert sorted(p.suffix for p in Path(router_cache).iterdir()) == [".npz", ".sha256"]

    assert cli.main(["route", "--json", texts[0]]) == 0
    out, err = capsys.readouterr()
    assert "Fitting" not in err  # cached
    result = json.loads(out)
    assert result["route"] == "action" and list(result["confidences"]) == ["action", "recall", "other"]
    assert abs(sum(result["confidences"].values()) - 1.0) < 1e-5 and result["confidences"]["action"] > 0.5


@pytest.mark.slow
def test_damaged_router_cache_is_refitted_not_used(router_cache, capsys, caplog):
    assert cli.main(["route", "hello"]) == 0
    capsys.readouterr()
    (cached,) = Path(router_cache).glob("*.npz")
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0x01
    cached.write_bytes(bytes(data))
    assert cli.main(["route", "book a table for two"]) == 0
    out, err = capsys.readouterr()
    assert "Ignoring the damaged router cache" in caplog.text
    assert "Fitting the router" in err and out.startswith("action")


def test_route_with_a_damaged_student_is_a_user_error(student_copy, capsys):
    path = student_copy / "student.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "max_seq_length": 100000}), encoding="utf-8")
    assert cli.main(["route", "hello", "--model", str(student_copy)]) == 1
    assert "max_seq_length=100000" in capsys.readouterr().err


def test_route_without_scikit_learn_names_the_extra(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "sklearn" else real(name))
    assert cli.main(["route", "--no-cache", "hello"]) == 1
    assert capsys.readouterr().err.strip().endswith(
        'Fitting the router (once per student, then cached) needs sklearn, which is not installed: '
        'pip install "rasa-intent-student[eval]"')
