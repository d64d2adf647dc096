"""The `make demo` flow against real servers on loopback: train, serve, talk, restart, recall."""
import socket
import time

import pytest

from examples.memory_bot import demo
from examples.memory_bot.actions import settings
from examples.memory_bot.actions.memory import MemoryStore
from examples.memory_bot.servers import BOT_DIR, LOOPBACK, BotServers, ServerError, pick_free_port, train


def describe(results) -> str:
    return "\n".join(f"{r.turn.sender}: {r.turn.text} -> {r.route} {r.replies} {r.problems}" for r in results)


@pytest.mark.slow
def test_demo_conversation_routes_recalls_isolates_and_persists(tmp_path, monkeypatch, student_dir):
    # A private Rasa cache: the test trains from scratch, as on a fresh clone.
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "rasa-cache"))
    started = time.monotonic()
    model = train(BOT_DIR, out_dir=tmp_path / "models", log_path=tmp_path / "train.log")
    train_s = time.monotonic() - started
    db = tmp_path / "memory.db"

    def servers() -> BotServers:
        return BotServers(model=model, work_dir=tmp_path / "run", db_path=db,
                          rasa_port=pick_free_port(), action_port=pick_free_port(),
                          env={settings.MODEL_ENV: str(student_dir)})

    with servers() as first:
        results = demo.play(first, demo.SCRIPT)
    assert not first.processes  # stopped
    assert [r for r in results if r.problems] == [], describe(results)
    by_turn = {(r.turn.sender, r.turn.text): r for r in results}
    question = "¿cuál es el código de mi taquilla?"
    assert "4411" in " ".join(by_turn[("alice", question)].replies)
    assert "4411" not in " ".join(by_turn[("bruno", question)].replies)
    assert {r.turn.lang for r in results} >= {"en", "es", "fr", "ja", "ko", "ru"}

    stored = MemoryStore(db)
    stored_before = stored.count()
    assert [e.text for e in stored.events("alice")][:1] == ["remember that my locker code is 4411"]
    assert all("4411" not in e.text for e in stored.events("bruno"))

    with servers() as second:  # fresh processes, same database
        after = demo.play(second, demo.AFTER_RESTART)
    assert [r for r in after if r.problems] == [], describe(after)
    assert stored.count() == stored_before
    assert time.monotonic() - started < 6 * 60, f"e2e took {time.monotonic() - started:.0f} s (training {train_s:.0f} s)"


def test_demo_refuses_a_taken_port_before_training(capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        assert demo.main(["--rasa-port", str(port), "--action-port", str(pick_free_port())]) == 2
    err = capsys.readouterr().err
    assert f"port {port}" in err and "--rasa-port" in err
    assert time.monotonic() - started < 5


def test_servers_refuse_equal_ports(tmp_path):
    port = pick_free_port()
    with pytest.raises(ServerError, match="different ports"):
        BotServers(model=tmp_path / "none.tar.gz", work_dir=tmp_path, rasa_port=port, action_port=port).start()
