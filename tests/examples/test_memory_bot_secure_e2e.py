"""memory_bot's security and failure handling, against real servers on loopback (`make demo`'s set-up)."""
import time
import urllib.parse

import jwt
import pytest

from examples.memory_bot import auth_channel
from examples.memory_bot.actions import actions, server_guard, settings
from examples.memory_bot.actions.memory import MemoryStore
from examples.memory_bot.servers import BotServers, ServerError, http_request, pick_free_port

pytestmark = pytest.mark.slow

LOCKER = "remember that my locker code is 4411"
LOCKER_Q = "what is my locker code?"


def make_servers(model, work_dir, student, **kw) -> BotServers:
    return BotServers(model=model, work_dir=work_dir, rasa_port=pick_free_port(), action_port=pick_free_port(),
                      env={settings.MODEL_ENV: str(student), **kw.pop("env", {})}, **kw)


@pytest.fixture(scope="module")
def bot(memory_bot_model, student_dir, tmp_path_factory):
    servers = make_servers(memory_bot_model, tmp_path_factory.mktemp("secure-bot"), student_dir)
    with servers:
        yield servers


def events(bot, sender):
    return [e.text for e in MemoryStore(bot.memory_db).events(sender)]


def tracker_events(bot, sender):
    return bot.api("GET", f"/conversations/{urllib.parse.quote(sender)}/tracker").get("events") or []


def test_missing_or_forged_tokens_get_401_and_nothing_is_parsed_or_stored(bot):
    before = MemoryStore(bot.memory_db).count()
    forged = {
        "none": None,
        "garbage": "not-a-jwt",
        "wrong signature": auth_channel.mint_token("mallory", "w" * 48),
        "expired": auth_channel.mint_token("mallory", bot.jwt_secret, now=time.time() - 7200),
        "unsigned": jwt.encode({"sub": "mallory", "exp": time.time() + 60}, None, algorithm="none"),
        "no expiry": jwt.encode({"sub": "mallory"}, bot.jwt_secret, algorithm="HS256"),
    }
    for what, token in forged.items():
        status, answer = bot.post({"sender": "mallory", "message": LOCKER}, token=token)
        assert status == 401, (what, status, answer)
    status, _ = http_request("POST", bot.webhook_url, {"sender": "mallory", "message": LOCKER},
                             headers={"Authorization": "Basic bWFsbG9yeTp4"})
    assert status == 401
    assert MemoryStore(bot.memory_db).count() == before
    assert events(bot, "mallory") == []
    assert [e for e in tracker_events(bot, "mallory") if e.get("event") == "user"] == []


def test_only_the_auth_channel_is_served(bot):
    status, _ = http_request("POST", f"{bot.rasa_url}/webhooks/rest/webhook", {"sender": "alice", "message": LOCKER_Q})
    assert status == 404
    # Rasa's HTTP API needs the auth token.
    status, _ = http_request("GET", f"{bot.rasa_url}/conversations/alice/tracker")
    assert status in (401, 403)


def test_the_body_sender_is_ignored(bot):
    alice, bob = bot.token_for("alice-e2e"), bot.token_for("bob-e2e")
    status, replies = bot.post({"sender": "bob-e2e", "message": LOCKER}, token=alice)
    assert status == 200 and "4411" in replies[0]["text"] and replies[0]["recipient_id"] == "alice-e2e"
    assert events(bot, "alice-e2e") == [LOCKER] and events(bot, "bob-e2e") == []
    # Bob names Alice in the body: he still gets only his own (empty) memory.
    status, replies = bot.post({"sender": "alice-e2e", "message": LOCKER_Q}, token=bob)
    assert status == 200 and "4411" not in " ".join(r.get("text", "") for r in replies)
    assert "4411" in " ".join(bot.say("alice-e2e", LOCKER_Q))


@pytest.mark.parametrize("body", [{"message": ""}, {"message": "   "}, {"message": None}, {"message": 123},
                                  {"message": ["remember", "x"]}, {}, [], "text"])
def test_empty_or_non_string_text_gets_the_documented_reply(bot, body):
    status, replies = bot.post(body, token=bot.token_for("carol-e2e"))
    assert status == 200 and [r["text"] for r in replies] == [auth_channel.NO_TEXT]
    assert events(bot, "carol-e2e") == []


def test_a_huge_message_is_cut_before_it_reaches_the_tracker(bot):
    [reply] = bot.say("dave-e2e", "remember that " + "pizza " * 200_000)
    assert "Saved to your memory" in reply
    texts = [e.get("text") or "" for e in tracker_events(bot, "dave-e2e") if e.get("event") == "user"]
    assert texts and max(map(len, texts)) <= auth_channel.MAX_MESSAGE_CHARS


def test_the_action_server_refuses_calls_without_its_token(bot):
    call = {"next_action": "action_memory_store", "sender_id": "alice-e2e", "version": "3.6.2", "domain": {},
            "tracker": {"sender_id": "alice-e2e", "slots": {}, "events": [], "paused": False,
                        "followup_action": None, "active_loop": {}, "latest_action_name": None,
                        "latest_message": {"text": "remember that my locker code is 0000",
                                           "intent": {"name": "action", "confidence": 1.0}}}}
    before = events(bot, "alice-e2e")
    assert http_request("POST", f"{bot.action_url}/webhook", call)[0] == 401
    assert http_request("POST", f"{bot.action_url}/webhook?token=guess", call)[0] == 403
    assert http_request("GET", f"{bot.action_url}/actions")[0] == 401
    assert events(bot, "alice-e2e") == before
    # With the token the same call works (so the refusals above were the token's doing).
    status, answer = http_request("POST", f"{bot.action_url}/webhook?token={bot.action_token}", call)
    assert status == 200 and "0000" in answer["responses"][0]["text"]


def test_a_deleted_database_recovers_without_restart(bot):
    bot.say("erin-e2e", "remember that my bike lock code is 2580")
    bot.memory_db.unlink()
    [reply] = bot.say("erin-e2e", LOCKER)
    assert reply.startswith("Done ✓")
    assert events(bot, "erin-e2e") == [LOCKER]
    assert "4411" in " ".join(bot.say("erin-e2e", LOCKER_Q))
    assert http_request("GET", f"{bot.action_url}/health") == (200, {"status": "ok"})


# Held out: none of these is in data/nlu.yml or the unit tests' phrase lists.
HELD_OUT_STORES = {
    "en": ["remember that my dentist is Dr. Lee", "note that the spare key is under the mat", "save that my seat is 14C"],
    "es": ["recuerda que mi dentista es la doctora Ruiz", "anota que la llave está debajo del felpudo",
           "guarda que mi asiento es el 14C"],
    "fr": ["souviens-toi que mon dentiste est le docteur Lee", "note que la clé est sous le paillasson",
           "enregistre que ma place est la 14C"],
    "de": ["merk dir, dass mein Zahnarzt Dr. Lee ist", "notiere, dass der Schlüssel unter der Matte liegt",
           "speichere, dass mein Sitzplatz 14C ist"],
    "pt": ["lembre que meu dentista é o Dr. Lee", "anote que a chave está debaixo do tapete",
           "guarde que meu assento é o 14C"],
    "it": ["ricorda che il mio dentista è il dottor Lee", "annota che la chiave è sotto lo zerbino",
           "ricordati che il mio posto è il 14C"],
    "nl": ["onthoud dat mijn tandarts dokter Lee is", "noteer dat de sleutel onder de mat ligt",
           "sla op dat mijn stoel 14C is"],
    "pl": ["zapamiętaj, że mój dentysta to doktor Lee", "zanotuj, że klucz jest pod wycieraczką",
           "zapisz, że moje miejsce to 14C"],
    "ru": ["запомни, что мой стоматолог доктор Ли", "запиши, что ключ под ковриком", "сохрани, что моё место 14C"],
    "tr": ["dişçimin Dr. Lee olduğunu hatırla", "anahtarın paspasın altında olduğunu not et",
           "koltuğumun 14C olduğunu kaydet"],
    "id": ["ingat bahwa dokter gigi saya Dr. Lee", "catat bahwa kuncinya di bawah keset",
           "simpan bahwa kursi saya 14C"],
    "vi": ["hãy nhớ rằng nha sĩ của tôi là bác sĩ Lee", "ghi lại rằng chìa khóa ở dưới thảm",
           "lưu lại rằng ghế của tôi là 14C"],
    "ar": ["تذكر أن طبيب أسناني هو الدكتور لي", "سجل أن المفتاح تحت السجادة", "احفظ أن مقعدي هو 14C"],
    "hi": ["याद रखना कि मेरे दंत चिकित्सक डॉ. ली हैं", "नोट करो कि चाबी पायदान के नीचे है",
           "याद रखो कि मेरी सीट 14C है"],
    "th": ["จำไว้ว่าหมอฟันของฉันคือหมอลี", "จดไว้ว่ากุญแจอยู่ใต้พรม", "บันทึกว่าที่นั่งของฉันคือ 14C"],
    "zh": ["记住我的牙医是李医生", "记下钥匙在门垫下面", "帮我记住我的座位是14C"],
    "ja": ["私の歯医者はリー先生だと覚えておいて", "鍵はマットの下にあるとメモして", "座席は14Cだと記録して"],
    "ko": ["내 치과 의사가 이 선생님이라고 기억해 줘", "열쇠가 매트 밑에 있다고 메모해 줘", "내 좌석이 14C라고 저장해 줘"],
}


def test_store_requests_route_to_action_in_every_language(bot):
    routed = {lang: [bot.parse(t)[0] for t in texts] for lang, texts in HELD_OUT_STORES.items()}
    misses = {lang: [t for t, r in zip(HELD_OUT_STORES[lang], routes) if r != "action"]
              for lang, routes in routed.items()}
    total = sum(len(t) for t in HELD_OUT_STORES.values())
    missed = sum(len(m) for m in misses.values())
    assert len(HELD_OUT_STORES) == 18
    assert missed <= 0.05 * total, {k: v for k, v in misses.items() if v}
    # And every one of them is stored, whatever its route: the action stores explicit requests.
    for lang, texts in HELD_OUT_STORES.items():
        for text in texts:
            assert bot.say(f"store-{lang}", text)[0].startswith("Done ✓"), (lang, text)
        assert len(events(bot, f"store-{lang}")) == len(texts)


def test_an_action_server_outage_gets_a_reply_and_recovers(bot):
    bot.stop_one("actions")
    try:
        for text in (LOCKER, LOCKER_Q):
            assert bot.say("frank-e2e", text) == [auth_channel.UNAVAILABLE]
        assert bot.say("frank-e2e", "hi there!")  # small talk needs no memory
    finally:
        bot.start(actions=True, rasa=False)
    assert bot.say("frank-e2e", LOCKER)[0].startswith("Done ✓")
    assert events(bot, "frank-e2e") == [LOCKER]


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_broken_student_fails_readiness(tmp_path, student_copy, damage):
    if damage == "corrupt":
        (student_copy / "model.onnx").write_bytes(b"not an onnx model")
        student = student_copy
    else:
        student = tmp_path / "no-student"
    servers = make_servers(tmp_path / "none.tar.gz", tmp_path / "run", student)
    with pytest.raises(ServerError, match="not ready.*student"):
        servers.start(actions=True, rasa=False)
    assert not servers.processes


def test_the_action_server_refuses_to_start_without_its_token(tmp_path, student_dir):
    servers = make_servers(tmp_path / "none.tar.gz", tmp_path / "run", student_dir,
                           env={server_guard.TOKEN_ENV: ""})
    with pytest.raises(ServerError, match=server_guard.TOKEN_ENV):
        servers.start(actions=True, rasa=False)


def test_rasa_refuses_to_start_with_a_weak_jwt_secret(tmp_path, student_dir):
    servers = make_servers(tmp_path / "none.tar.gz", tmp_path / "run", student_dir, jwt_secret="short")
    with pytest.raises(ServerError, match=auth_channel.SECRET_ENV):
        servers.start(actions=False, rasa=True)
