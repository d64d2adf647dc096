"""memory_bot's guards without servers: tokens, the action token, explicit store phrases, anonymous senders."""
import time
from types import SimpleNamespace

import jwt
import pytest

from examples.memory_bot import auth_channel
from examples.memory_bot.actions import server_guard
from examples.memory_bot.actions.store_phrases import is_explicit_store

SECRET = "s" * 48


def request_with(header):
    return SimpleNamespace(headers={"Authorization": header} if header is not None else {})


def test_a_minted_token_names_its_user():
    token = auth_channel.mint_token("alice", SECRET)
    assert auth_channel.verify_token(token, SECRET) == "alice"
    channel = auth_channel.AuthenticatedRestInput(SECRET)
    assert channel.name() == "auth_rest"
    assert channel.authenticate(request_with(f"Bearer {token}")) == "alice"


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic YWxpY2U6eA==", "alice",
    "Bearer " + auth_channel.mint_token("alice", "x" * 48),  # another secret
    "Bearer " + auth_channel.mint_token("alice", SECRET, now=time.time() - 3600),  # expired
    "Bearer " + jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),  # no expiry
    "Bearer " + jwt.encode({"sub": "alice", "exp": time.time() + 60}, None, algorithm="none"),  # unsigned
    "Bearer " + jwt.encode({"exp": time.time() + 60}, SECRET, algorithm="HS256"),  # no sub
    "Bearer " + jwt.encode({"sub": "", "exp": time.time() + 60}, SECRET, algorithm="HS256"),
    "Bearer " + jwt.encode({"sub": "default", "exp": time.time() + 60}, SECRET, algorithm="HS256"),
    "Bearer " + jwt.encode({"sub": "alice", "exp": time.time() + 60}, SECRET, algorithm="HS512"),
])
def test_missing_or_bad_tokens_authenticate_nobody(header):
    assert auth_channel.AuthenticatedRestInput(SECRET).authenticate(request_with(header)) is None


@pytest.mark.parametrize("environ, match", [({}, "not set"), ({auth_channel.SECRET_ENV: "  "}, "not set"),
                                            ({auth_channel.SECRET_ENV: "short"}, "too short")])
def test_channel_refuses_to_start_without_a_strong_secret(monkeypatch, environ, match):
    monkeypatch.delenv(auth_channel.SECRET_ENV, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(auth_channel.ChannelConfigError, match=match):
        auth_channel.AuthenticatedRestInput.from_credentials(None)


def test_action_token_is_required_and_compared_exactly():
    with pytest.raises(SystemExit, match="not set"):
        server_guard.load_token({})
    with pytest.raises(SystemExit, match="too short"):
        server_guard.load_token({server_guard.TOKEN_ENV: "abc"})
    token = server_guard.load_token({server_guard.TOKEN_ENV: "t" * 20})
    assert server_guard.token_allows("t" * 20, token)
    assert not server_guard.token_allows(None, token)
    assert not server_guard.token_allows("t" * 19, token)
    assert server_guard.install() is False  # not inside an action server: nothing to guard


# Explicit store requests, several per language (the NLU test in test_memory_bot_secure_e2e.py
# routes held-out ones); the action stores these even when they are routed to recall.
STORE_REQUESTS = {
    "en": ["remember that my passport number is X123", "note that the plumber comes Friday",
           "save that my bike is in rack 12", "please remember my PIN hint is 'blue'"],
    "es": ["recuerda que mi pasaporte es X123", "anota que el fontanero viene el viernes",
           "guarda que mi bici está en el aparcamiento 12"],
    "fr": ["souviens-toi que mon passeport est X123", "note que le plombier vient vendredi",
           "enregistre que mon vélo est au parking 12"],
    "de": ["merk dir, dass meine Passnummer X123 ist", "notiere, dass der Klempner am Freitag kommt",
           "speichere, dass mein Rad in Ständer 12 steht"],
    "pt": ["lembre que meu passaporte é X123", "anote que o encanador vem sexta", "guarde que minha bike está na vaga 12"],
    "it": ["ricorda che il mio passaporto è X123", "annota che l'idraulico viene venerdì",
           "salva che la mia bici è nella rastrelliera 12", "ricordati che il codice è 5560"],
    "nl": ["onthoud dat mijn paspoort X123 is", "noteer dat de loodgieter vrijdag komt", "sla op dat mijn fiets in rek 12 staat"],
    "pl": ["zapamiętaj, że mój paszport to X123", "zanotuj, że hydraulik przyjdzie w piątek", "zapisz, że rower stoi w stojaku 12"],
    "ru": ["запомни, что мой паспорт X123", "запиши, что сантехник придёт в пятницу", "сохрани, что велосипед на стоянке 12"],
    "tr": ["pasaportumun X123 olduğunu hatırla", "tesisatçının cuma geleceğini not et", "bisikletimin 12 numarada olduğunu kaydet"],
    "id": ["ingat bahwa paspor saya X123", "catat bahwa tukang ledeng datang hari Jumat", "tolong ingat sepeda saya di rak 12"],
    "vi": ["hãy nhớ rằng hộ chiếu của tôi là X123", "ghi lại rằng thợ sửa ống nước đến thứ Sáu", "lưu lại xe đạp của tôi ở giá 12"],
    "ar": ["تذكر أن رقم جوازي X123", "سجل أن السباك سيأتي يوم الجمعة", "احفظ أن دراجتي في الموقف 12"],
    "hi": ["याद रखना कि मेरा पासपोर्ट X123 है", "नोट करो कि प्लंबर शुक्रवार को आएगा", "मेरी साइकिल स्टैंड 12 पर है, याद रखो"],
    "th": ["จำไว้ว่าพาสปอร์ตของฉันคือ X123", "จดไว้ว่าช่างประปาจะมาวันศุกร์", "บันทึกว่าจักรยานของฉันอยู่ที่ช่อง 12"],
    "zh": ["记住我的护照是X123", "记下水管工星期五来", "帮我记住我的自行车在12号车架"],
    "ja": ["パスポートはX123だと覚えておいて", "配管工は金曜に来るとメモして", "自転車は12番に停めたと覚えといて"],
    "ko": ["내 여권 번호가 X123이라고 기억해 줘", "배관공이 금요일에 온다고 메모해 줘", "자전거를 12번에 세웠다고 저장해줘"],
}
NOT_STORE_REQUESTS = [
    "what did I ask you to remember?", "do you remember my passport number?", "remembering is hard",
    "¿recuerdas mi número de pasaporte?", "qu'est-ce que je t'ai demandé de noter ?", "was hast du dir gemerkt?",
    "我让你记住了什么？", "何を覚えておいてって言ったっけ？", "내가 뭘 기억해 달라고 했지?", "note", "hi there!",
    "ricordi il mio codice?", "помнишь мой код?", "",
]


@pytest.mark.parametrize("lang", sorted(STORE_REQUESTS))
def test_explicit_store_requests_are_recognized_in_every_language(lang):
    assert [t for t in STORE_REQUESTS[lang] if not is_explicit_store(t)] == []


def test_questions_and_chat_are_not_store_requests():
    assert [t for t in NOT_STORE_REQUESTS if is_explicit_store(t)] == []
    assert len(STORE_REQUESTS) == 18


def test_the_store_router_overrides_only_explicit_store_requests():
    from rasa.shared.nlu.training_data.message import Message

    from examples.memory_bot.store_router import ExplicitStoreRouter

    def routed(text, route):
        message = Message(data={"text": text, "intent": {"name": route, "confidence": 0.9},
                                "intent_ranking": [{"name": route, "confidence": 0.9}]})
        [out] = ExplicitStoreRouter({}).process([message])
        return out.get("intent")["name"], out.get("intent_ranking")[0]["name"]

    assert routed("remember that my passport number is X123", "recall") == ("action", "action")
    assert routed("ricorda che il codice è 5560", "other") == ("action", "action")
    assert routed("what did I ask you to remember?", "recall") == ("recall", "recall")
    assert routed("hi there!", "other") == ("other", "other")
