"""`make scale-check`: memory_bot on Rasa's distributed stack, on loopback, checked for lost, duplicated
and leaked memories.

It starts, all on 127.0.0.1 and all stopped at the end:

    PostgreSQL (tracker store "rasa" + memory "memory")   Redis (lock store)
    N `rasa run` replicas with endpoints.production.yml   M action servers behind a round-robin proxy

then plays U concurrent users x K messages in several languages through the authenticated channel
(`auth_rest`, one JWT per user): explicit store requests, recall questions and small talk, each user's
messages round-robin over the replicas, as a load balancer without sticky sessions would send them; one
message in ten goes out together with the next one, to another replica (a double click).
After the first part, replica 0 is restarted and the users come back. Checked afterwards:

- every store request is in the memory exactly once (`lost`, `duplicates`);
- each user's tracker holds exactly the user's messages, in the order sent (a simultaneous pair in either
  order), each handled (bot reply, action_listen) before the next one starts (`order_errors`);
- recall answers only quote the asking user's own messages, and no reply carries another user's code
  (`leaks`); nobody's memory holds another user's text;
- every message got HTTP 200 and a real reply; store requests got "Done ✓" (`errors`).

A summary table is printed, and as the last line a JSON object. Exit status 1 when any count above is
not 0, 2 when the servers could not be started.

    python -m examples.memory_bot.scale_check [--replicas 2] [--action-servers 2] [--users 20] [--messages 20]
"""
import argparse
import asyncio
import itertools
import json
import logging
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import auth_channel
from .actions import server_guard, settings
from .actions.store_phrases import is_explicit_store
from .local_services import LocalPostgres, LocalRedis
from .servers import BOT_DIR, LOOPBACK, BotServers, ServerError, http_request, new_secret, pick_free_port, train

logger = logging.getLogger("scale_check")

PRODUCTION_ENDPOINTS = BOT_DIR / "endpoints.production.yml"
# A message waits for the others in Rasa's queue on a busy 2-core machine: allow minutes.
MESSAGE_TIMEOUT_S = 180.0
# Share of each user's messages sent before the replica restart.
FIRST_PART = 0.6
QUOTE_RE = re.compile(r"you told me: “(.*?)(…)?”", re.S)
DONE = "Done ✓"

# Per language: explicit store requests ({c} = a code unique to the user and fact), recall questions for
# the same topics, small talk. Store requests start (or, in Japanese, end) with a phrase of
# actions/store_phrases.py, so they take the `action` route whatever the classifier thinks.
LANGUAGES: Dict[str, Dict[str, List[str]]] = {
    "en": {
        "store": ["remember that my locker code is {c}", "note that my bike lock code is {c}",
                  "save that my seat number is {c}", "remember that my parking spot is {c}",
                  "note that the gate code is {c}", "remember that my room number is {c}"],
        "recall": ["what is my locker code?", "what's my bike lock code?", "what is my seat number?",
                   "where did I park?", "what's the gate code?", "what is my room number?"],
        "small": ["hi there!", "thanks a lot!", "how are you today?", "good morning!", "you are great",
                  "see you later!"],
    },
    "es": {
        "store": ["recuerda que el código de mi taquilla es {c}", "apunta que el candado de mi bici es {c}",
                  "guarda que mi asiento es el {c}", "recuerda que aparqué en la plaza {c}",
                  "anota que el código del portal es {c}", "recuerda que mi habitación es la {c}"],
        "recall": ["¿cuál es el código de mi taquilla?", "¿cuál es el código del candado de mi bici?",
                   "¿cuál es mi asiento?", "¿dónde aparqué?", "¿cuál es el código del portal?",
                   "¿cuál es mi habitación?"],
        "small": ["¡hola!", "¡muchas gracias!", "¿qué tal estás?", "¡buenos días!", "eres genial", "¡hasta luego!"],
    },
    "fr": {
        "store": ["souviens-toi que le code de mon casier est {c}", "note que le code de mon antivol est {c}",
                  "enregistre que ma place est la {c}", "retiens que je suis garé à la place {c}",
                  "note que le code du portail est {c}", "souviens-toi que ma chambre est la {c}"],
        "recall": ["quel est le code de mon casier ?", "quel est le code de mon antivol ?", "quelle est ma place ?",
                   "où suis-je garé ?", "quel est le code du portail ?", "quelle est ma chambre ?"],
        "small": ["bonjour !", "merci beaucoup !", "comment ça va ?", "bonne journée !", "tu es génial",
                  "à plus tard !"],
    },
    "de": {
        "store": ["merk dir, dass mein Spindcode {c} ist", "notiere, dass der Code meines Fahrradschlosses {c} ist",
                  "speichere, dass mein Sitzplatz {c} ist", "merk dir, dass ich auf Platz {c} geparkt habe",
                  "notiere, dass der Torcode {c} ist", "merk dir, dass meine Zimmernummer {c} ist"],
        "recall": ["wie lautet mein Spindcode?", "wie ist der Code meines Fahrradschlosses?",
                   "welcher ist mein Sitzplatz?", "wo habe ich geparkt?", "wie lautet der Torcode?",
                   "welche Zimmernummer habe ich?"],
        "small": ["hallo!", "vielen Dank!", "wie geht's dir?", "guten Morgen!", "du bist toll", "bis später!"],
    },
    "pt": {
        "store": ["lembre que o código do meu armário é {c}", "anote que o cadeado da minha bicicleta é {c}",
                  "guarde que o meu assento é o {c}", "lembre que estacionei na vaga {c}",
                  "anote que o código do portão é {c}", "lembre que o meu quarto é o {c}"],
        "recall": ["qual é o código do meu armário?", "qual é o código do cadeado da minha bicicleta?",
                   "qual é o meu assento?", "onde eu estacionei?", "qual é o código do portão?",
                   "qual é o meu quarto?"],
        "small": ["olá!", "muito obrigado!", "como você está?", "bom dia!", "você é ótimo", "até logo!"],
    },
    "it": {
        "store": ["ricorda che il codice del mio armadietto è {c}", "annota che il lucchetto della mia bici è {c}",
                  "salva che il mio posto è il {c}", "ricordati che ho parcheggiato al posto {c}",
                  "annota che il codice del cancello è {c}", "ricorda che la mia camera è la {c}"],
        "recall": ["qual è il codice del mio armadietto?", "qual è il codice del lucchetto della bici?",
                   "qual è il mio posto?", "dove ho parcheggiato?", "qual è il codice del cancello?",
                   "qual è la mia camera?"],
        "small": ["ciao!", "grazie mille!", "come stai?", "buongiorno!", "sei fantastico", "a dopo!"],
    },
    "ru": {
        "store": ["запомни, что код моего шкафчика {c}", "запиши, что код велозамка {c}",
                  "сохрани, что моё место {c}", "запомни, что я припарковался на месте {c}",
                  "запиши, что код ворот {c}", "запомни, что мой номер комнаты {c}"],
        "recall": ["какой код моего шкафчика?", "какой код велозамка?", "какое у меня место?",
                   "где я припарковался?", "какой код ворот?", "какой у меня номер комнаты?"],
        "small": ["привет!", "большое спасибо!", "как дела?", "доброе утро!", "ты молодец", "до встречи!"],
    },
    "ja": {
        "store": ["ロッカーの番号は{c}だと覚えておいて", "自転車の鍵の番号は{c}だとメモして", "座席は{c}だと記録して",
                  "駐車場所は{c}番だと覚えておいて", "門の暗証番号は{c}だとメモして", "部屋番号は{c}だと覚えておいて"],
        "recall": ["ロッカーの番号は何？", "自転車の鍵の番号は？", "私の座席はどこ？", "どこに駐車した？", "門の暗証番号は？",
                   "部屋番号は何番？"],
        "small": ["こんにちは！", "ありがとう！", "元気？", "おはよう！", "すごいね", "またね！"],
    },
}
# The kinds of a user's messages, repeated: 3 store requests, 4 recall questions, 3 small talk per 10.
PATTERN = ["small", "store", "store", "recall", "small", "store", "recall", "recall", "small", "recall"]
# Message i with i % len(PATTERN) == BURST_AT is sent together with message i + 1, to two replicas at
# once (a double click, two open tabs): Redis' per-conversation lock must handle them one at a time.
BURST_AT = 8


@dataclass
class Message:
    """One message of one user and what became of it."""

    user: str
    index: int
    kind: str  # store / recall / small
    text: str
    code: str = ""  # store: the fact's code; recall: the code of the fact asked about ("" if none yet)
    replica: int = -1
    status: int = 0
    replies: List[str] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""
    burst: bool = False  # sent together with the next message of the same user


def code_for(user: int, fact: int) -> str:
    """A 6-digit code unique to (user, fact): no code is a substring of another user's."""
    return f"7{user:03d}{fact:02d}"


def plan_user(user: int, messages: int) -> List[Message]:
    """The messages of user ``user``: language by user, kinds by PATTERN, recalls ask for earlier facts."""
    lang = sorted(LANGUAGES)[user % len(LANGUAGES)]
    phrases = LANGUAGES[lang]
    name = f"user-{user:03d}-{lang}"
    plan: List[Message] = []
    facts: List[Tuple[int, str]] = []  # (topic, code) stored so far
    small = itertools.cycle(phrases["small"][user % 3:] + phrases["small"][:user % 3])
    for i in range(messages):
        kind = PATTERN[i % len(PATTERN)]
        if kind == "store":
            topic = len(facts) % len(phrases["store"])
            code = code_for(user, len(facts))
            facts.append((topic, code))
            plan.append(Message(name, i, kind, phrases["store"][topic].format(c=code), code))
        elif kind == "recall":
            if facts:
                topic, code = facts[(i * 7 + user) % len(facts)]
            else:
                topic, code = user % len(phrases["recall"]), ""
            plan.append(Message(name, i, kind, phrases["recall"][topic], code))
        else:
            plan.append(Message(name, i, kind, next(small)))
    for m in plan:
        if m.kind == "store" and not is_explicit_store(m.text):
            raise ValueError(f"scale check phrase {m.text!r} is not an explicit store request (store_phrases.py)")
    return plan


# ------------------------------------------------------------------------------------------- the stack

class RoundRobinProxy:
    """A TCP proxy on loopback that hands each new connection to the next live backend.

    Rasa opens one connection per action call, so this spreads calls over the action servers as a
    Kubernetes Service or an internal load balancer would; a backend that refuses is skipped.
    """

    def __init__(self, backends: Sequence[Tuple[str, int]], host: str = LOOPBACK) -> None:
        self.backends = list(backends)
        self.host, self.port = host, pick_free_port(host)
        self.counts = {b: 0 for b in self.backends}
        self._next = itertools.cycle(self.backends)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/webhook"

    def start(self) -> "RoundRobinProxy":
        ready = threading.Event()
        failure: List[BaseException] = []

        def serve():
            self._loop = asyncio.new_event_loop()
            try:
                server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
            except BaseException as e:  # reported to start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="action-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise ServerError(f"the action proxy could not listen on {self.host}:{self.port}: {failure[0]}")
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in self.backends:
            backend = next(self._next)
            try:
                upstream = await asyncio.open_connection(*backend)
                self.counts[backend] += 1
                break
            except OSError:
                continue
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while True:
                    chunk = await source.read(65536)
                    if not chunk:
                        break
                    sink.write(chunk)
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None


@dataclass
class Stack:
    """PostgreSQL, Redis, M action servers behind a proxy and N Rasa replicas, sharing their secrets."""

    model: Path
    work_dir: Path
    replicas: int
    action_servers: int
    student: Optional[str] = None
    endpoints: Path = PRODUCTION_ENDPOINTS
    pg: Optional[LocalPostgres] = None
    redis: Optional[LocalRedis] = None
    proxy: Optional[RoundRobinProxy] = None
    actions: List[BotServers] = field(default_factory=list)
    rasa: List[BotServers] = field(default_factory=list)
    secrets: Dict[str, str] = field(default_factory=dict)

    def start(self) -> "Stack":
        try:
            t = time.monotonic()
            self.pg = LocalPostgres().start()
            self.redis = LocalRedis().start()
            logger.info("PostgreSQL on :%d and Redis on :%d ready in %.1f s", self.pg.port, self.redis.port,
                        time.monotonic() - t)
            # One set of random secrets for the whole deployment (in production: the secret manager's).
            self.secrets = {"jwt_secret": new_secret(), "action_token": new_secret(), "api_token": new_secret()}
            action_env = {settings.DB_ENV: self.pg.url("memory")}
            if self.student:
                action_env[settings.MODEL_ENV] = self.student
            for i in range(self.action_servers):
                servers = BotServers(model=self.model, work_dir=self.work_dir / f"actions-{i}", action_port=pick_free_port(),
                                     rasa_port=pick_free_port(), env=action_env, **self.secrets)
                servers.work_dir.mkdir(parents=True, exist_ok=True)
                servers.start_actions()
                self.actions.append(servers)
            self.proxy = RoundRobinProxy([(LOOPBACK, s.action_port) for s in self.actions]).start()
            for i in range(self.replicas):
                servers = BotServers(model=self.model, work_dir=self.work_dir / f"rasa-{i}", rasa_port=pick_free_port(),
                                     action_port=self.proxy.port, endpoints=self.endpoints,
                                     rasa_env=self.rasa_env(), **self.secrets)
                servers.work_dir.mkdir(parents=True, exist_ok=True)
                servers.start_rasa()
                self.rasa.append(servers)
            for servers in self.actions:  # all started at once; now wait for each
                servers.wait_ready(actions=True, rasa=False)
            for servers in self.rasa:
                servers.wait_ready(actions=False, rasa=True)
            logger.info("%d action servers and %d Rasa replicas ready after %.0f s", self.action_servers,
                        self.replicas, time.monotonic() - t)
        except BaseException:
            self.stop()
            raise
        return self

    def rasa_env(self) -> Dict[str, str]:
        """What endpoints.production.yml reads: the secrets reach Rasa only through its environment."""
        return {
            "MEMORY_BOT_ACTION_URL": self.proxy.url,
            "RASA_TRACKER_DB_HOST": self.pg.host, "RASA_TRACKER_DB_PORT": str(self.pg.port),
            "RASA_TRACKER_DB_USER": self.pg.user, "RASA_TRACKER_DB_PASSWORD": self.pg.password,
            "RASA_TRACKER_DB_NAME": "rasa",
            "RASA_LOCK_REDIS_HOST": self.redis.host, "RASA_LOCK_REDIS_PORT": str(self.redis.port),
            "RASA_LOCK_REDIS_PASSWORD": self.redis.password, "RASA_LOCK_REDIS_DB": "1",
        }

    def restart_rasa(self, index: int) -> float:
        """Stop replica ``index`` (SIGTERM) and start it again; seconds until it was ready."""
        t = time.monotonic()
        servers = self.rasa[index]
        servers.stop_one("rasa")
        servers.start(actions=False, rasa=True)
        return time.monotonic() - t

    def stop(self) -> None:
        for servers in self.rasa + self.actions:
            servers.stop()
        if self.proxy is not None:
            self.proxy.stop()
        for service in (self.redis, self.pg):
            if service is not None:
                service.stop()


# --------------------------------------------------------------------------------------------- the load

def send(stack: Stack, message: Message, replica: int) -> None:
    """POST one message as its user to ``replica``; fill in status, replies, latency."""
    servers = stack.rasa[replica]
    token = auth_channel.mint_token(message.user, stack.secrets["jwt_secret"])
    message.replica = replica
    t = time.perf_counter()
    try:
        status, answer = http_request("POST", servers.webhook_url, {"message": message.text},
                                      headers={"Authorization": f"Bearer {token}"}, timeout=MESSAGE_TIMEOUT_S)
    except OSError as e:
        message.status, message.error = 0, f"{type(e).__name__}: {e}"
        answer = None
    else:
        message.status = status
    message.latency_ms = (time.perf_counter() - t) * 1000
    if isinstance(answer, list):
        message.replies = [r.get("text", "") for r in answer if isinstance(r, dict) and r.get("text")]


def play(stack: Stack, plans: List[List[Message]], start: int, stop: int) -> float:
    """Every user sends messages [start, stop) of their plan, one after another, all users at once.

    User u's message i goes to replica (u + i) mod N: consecutive messages of a user hit different
    replicas. Returns the wall time in seconds.
    """
    n = len(stack.rasa)

    def user(u: int) -> None:
        messages = plans[u][start:stop]
        i = 0
        while i < len(messages):
            message = messages[i]
            if is_burst(message.index) and i + 1 < len(messages):
                second = messages[i + 1]
                message.burst = True
                other = threading.Thread(target=send, args=(stack, second, (u + second.index) % n))
                other.start()
                send(stack, message, (u + message.index) % n)
                other.join()
                i += 2
            else:
                send(stack, message, (u + message.index) % n)
                i += 1

    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        list(pool.map(user, range(len(plans))))
    return time.monotonic() - t


def is_burst(index: int) -> bool:
    return index % len(PATTERN) == BURST_AT


# ---------------------------------------------------------------------------------------------- checks

def tracker_problem(events: List[dict], plan: List[Message]) -> str:
    """Why the user's tracker events are not the user's messages in order, each fully handled before the
    next (user, bot replies, action_listen); "" when they are. A burst pair may be in either order."""
    texts = [e.get("text") for e in events if e.get("event") == "user"]
    expected = [m.text for m in plan]
    if len(texts) != len(expected):
        return f"tracker holds {len(texts)} user messages, {len(expected)} were sent"
    i = 0
    while i < len(expected):
        pair = plan[i].burst and i + 1 < len(expected)
        if pair and sorted(texts[i:i + 2]) == sorted(expected[i:i + 2]):
            i += 2
            continue
        if texts[i] != expected[i]:
            return f"message {i} is {texts[i]!r} in the tracker, {expected[i]!r} was sent"
        i += 1
    pending = None  # what the latest user message still lacks before the next may start
    for e in events:
        kind = e.get("event")
        if kind == "user":
            if pending:
                return f"a message started before the previous one was handled ({', '.join(sorted(pending))} missing)"
            pending = {"bot", "action_listen"}
        elif pending and kind == "bot":
            pending.discard("bot")
        elif pending and kind == "action" and e.get("name") == "action_listen":
            pending.discard("action_listen")
    return f"the last message lacks {', '.join(sorted(pending))}" if pending else ""


def fetch_memory(stack: Stack) -> Dict[str, List[str]]:
    """Every user's stored texts, oldest first, straight from PostgreSQL."""
    import psycopg2

    from .actions.memory import PG_TABLE

    conn = psycopg2.connect(stack.pg.url("memory"))
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(f"SELECT sender_id, text FROM {PG_TABLE} ORDER BY id")
            rows = cursor.fetchall()
    finally:
        conn.close()
    memory: Dict[str, List[str]] = {}
    for sender, text in rows:
        memory.setdefault(sender, []).append(text)
    return memory


def fetch_tracker_events(stack: Stack, user: str, replica: int) -> List[dict]:
    """The user's tracker events (all sessions) from PostgreSQL, read through replica ``replica``."""
    tracker = stack.rasa[replica].api("GET", f"/conversations/{urllib.parse.quote(user, safe='')}/tracker")
    return list(tracker.get("events") or [])


def tracker_rows(stack: Stack) -> Tuple[int, int]:
    """(rows, conversations) in Rasa's tracker table in PostgreSQL."""
    import psycopg2

    conn = psycopg2.connect(stack.pg.url("rasa"))
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), COUNT(DISTINCT sender_id) FROM events")
            return tuple(int(x) for x in cursor.fetchone())
    finally:
        conn.close()


def check(stack: Stack, plans: List[List[Message]]) -> Dict[str, object]:
    """Count lost, duplicated and leaked memories, out-of-order trackers and failed messages."""
    memory = fetch_memory(stack)
    users = {plan[0].user for plan in plans}
    codes = {m.code: m.user for plan in plans for m in plan if m.kind == "store"}
    result = {"store_requests": 0, "stored": 0, "lost": 0, "duplicates": 0, "leaks": 0, "order_errors": 0,
              "errors": 0, "recall_answered": 0, "recall_right_fact": 0, "recalls": 0,
              "other_route_stored": 0}
    problems: List[str] = []
    for sender in memory:
        if sender not in users:
            result["leaks"] += len(memory[sender])
            problems.append(f"memory of unknown sender {sender!r}")
    for u, plan in enumerate(plans):
        user = plan[0].user
        rows = memory.get(user, [])
        sent = [m.text for m in plan]
        for text in set(rows):
            if text not in sent:  # someone else's text in this user's memory
                result["leaks"] += rows.count(text)
                problems.append(f"{user}: memory holds {text!r}, never sent by them")
            elif rows.count(text) > sent.count(text):
                result["duplicates"] += rows.count(text) - sent.count(text)
                problems.append(f"{user}: {text!r} stored {rows.count(text)} times")
        for m in plan:
            ok_status = m.status == 200 and m.replies and auth_channel.UNAVAILABLE not in m.replies
            if not ok_status:
                result["errors"] += 1
                problems.append(f"{user} #{m.index} via replica {m.replica}: HTTP {m.status} {m.error} {m.replies}")
            if m.kind == "store":
                result["store_requests"] += 1
                n = rows.count(m.text)
                result["stored"] += n == 1
                if n == 0:
                    result["lost"] += 1
                    problems.append(f"{user} #{m.index}: {m.text!r} not in memory (reply {m.replies})")
                if ok_status and not (m.replies[0].startswith(DONE) and m.code in m.replies[0]):
                    result["errors"] += 1  # not confirmed, or confirmed with another message's text
                    problems.append(f"{user} #{m.index}: store request {m.text!r} answered {m.replies}")
            elif m.text in rows:
                result["other_route_stored"] += 1  # a recall or small talk the classifier sent to `action`
            if m.kind == "recall":
                result["recalls"] += 1
            for reply in m.replies:
                quote = QUOTE_RE.search(reply)
                if quote:
                    quoted = quote.group(1)
                    result["recall_answered"] += 1
                    if not any(t == quoted or (quote.group(2) and t.startswith(quoted)) for t in sent):
                        result["leaks"] += 1
                        problems.append(f"{user} #{m.index}: recall quoted {quoted!r}, not theirs")
                    elif m.code and m.code in quoted:
                        result["recall_right_fact"] += 1
                for code in re.findall(r"(?<!\d)7\d{5}(?!\d)", reply):
                    if code in codes and codes[code] != user:
                        result["leaks"] += 1
                        problems.append(f"{user} #{m.index}: reply carries {codes[code]}'s code {code}")
        problem = tracker_problem(fetch_tracker_events(stack, user, (u + 1) % len(stack.rasa)), plan)
        if problem:
            result["order_errors"] += 1
            problems.append(f"{user}: {problem}")
    result["problems"] = problems
    return result


# --------------------------------------------------------------------------------------------- report

def describe_endpoints(path: Path) -> Dict[str, str]:
    """{"lock_store": …, "tracker_store": …} as the endpoints file configures them (no variables expanded)."""
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    lock = (config.get("lock_store") or {}).get("type") or "in_memory"
    tracker = config.get("tracker_store") or {}
    kind = str(tracker.get("type") or "in_memory").lower()
    return {"lock_store": str(lock).lower(),
            "tracker_store": f"{kind}/{tracker.get('dialect', 'sqlite')}" if kind == "sql" else kind}


def percentile(values: List[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def table(rows: List[List[object]], header: List[str]) -> str:
    cells = [[str(c) for c in row] for row in [header] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Dict[str, object]:
    """Start the stack, play the load with a replica restart in the middle, check; the JSON summary."""
    t0 = time.monotonic()
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="memory-bot-scale-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else None
    if model is None:
        logger.info("Training memory_bot (unchanged parts come from Rasa's cache)…")
        model = train(BOT_DIR, out_dir=work_dir / "models", log_path=work_dir / "train.log", fixed_name="memory_bot")
    plans = [plan_user(u, args.messages) for u in range(args.users)]
    split = max(1, min(args.messages - 1, round(args.messages * FIRST_PART)))
    endpoints = Path(args.endpoints)
    stores = describe_endpoints(endpoints)
    stack = Stack(model=model, work_dir=work_dir, replicas=args.replicas, action_servers=args.action_servers,
                  student=args.student, endpoints=endpoints)
    stack.start()
    try:
        startup_s = time.monotonic() - t0
        logger.info("Part 1: %d users x %d messages over %d replica(s)…", args.users, split, args.replicas)
        load_s = play(stack, plans, 0, split)
        restart_s = stack.restart_rasa(0)
        logger.info("Replica 0 restarted in %.0f s; part 2: %d users x %d messages…", restart_s, args.users,
                    args.messages - split)
        load_s += play(stack, plans, split, args.messages)
        logger.info("Checking memory, trackers and replies…")
        result = check(stack, plans)
        rows, conversations = tracker_rows(stack)
        redis_info = stack.redis.client().info("stats")
        action_calls = {f"actions-{i}": stack.proxy.counts[(LOOPBACK, s.action_port)] for i, s in enumerate(stack.actions)}
    finally:
        stack.stop()
    messages = [m for plan in plans for m in plan]
    latencies = [m.latency_ms for m in messages if m.status == 200]
    problems = result.pop("problems")
    per_replica = []
    for r in range(args.replicas):
        served = [m for m in messages if m.replica == r]
        lat = [m.latency_ms for m in served if m.status == 200]
        per_replica.append([f"rasa-{r}", len(served), sum(m.status != 200 for m in served),
                            f"{percentile(lat, 50):.0f}", f"{percentile(lat, 95):.0f}"])
    print(f"\nmemory_bot scale check: {args.replicas} Rasa replica(s), {args.action_servers} action servers, "
          f"tracker store {stores['tracker_store']}, lock store {stores['lock_store']}, memory in PostgreSQL "
          f"({endpoints.name}); {args.users} users x {args.messages} messages "
          f"in {len(LANGUAGES)} languages; replica 0 restarted after message {split}.\n")
    print(table(per_replica, ["replica", "messages", "non-200", "p50 ms", "p95 ms"]))
    print()
    print(table([[k, v] for k, v in action_calls.items()], ["action server", "calls"]))
    print()
    checks = [["store requests", result["store_requests"]], ["stored exactly once", result["stored"]],
              ["lost", result["lost"]], ["duplicates", result["duplicates"]], ["leaks", result["leaks"]],
              ["trackers out of order", result["order_errors"]], ["failed messages", result["errors"]],
              ["recall answers (own facts)", f"{result['recall_answered']} of {result['recalls']} recalls, "
                                             f"{result['recall_right_fact']} the fact asked for"],
              ["recall/small talk routed to action", result["other_route_stored"]],
              ["tracker rows / conversations", f"{rows} / {conversations}"],
              ["redis commands (locks)", redis_info.get("total_commands_processed")],
              ["startup / restart s", f"{startup_s:.0f} / {restart_s:.0f}"]]
    print(table(checks, ["check", "result"]))
    for problem in problems[:30]:
        print("PROBLEM:", problem)
    summary = {
        "replicas": args.replicas, "action_servers": args.action_servers, "memory_backend": "postgresql",
        **stores, "users": args.users, "messages": len(messages),
        "languages": len(LANGUAGES), "store_requests": result["store_requests"], "stored": result["stored"],
        "lost": result["lost"], "duplicates": result["duplicates"], "leaks": result["leaks"],
        "order_errors": result["order_errors"], "errors": result["errors"],
        "recalls": result["recalls"], "recall_answered": result["recall_answered"],
        "recall_right_fact": result["recall_right_fact"], "replica_restarts": 1,
        "p50_ms": round(percentile(latencies, 50)), "p95_ms": round(percentile(latencies, 95)),
        "msgs_per_s": round(len(messages) / load_s, 2) if load_s else 0.0,
        "load_s": round(load_s, 1), "restart_s": round(restart_s, 1), "total_s": round(time.monotonic() - t0, 1),
        "pgvector": False,
    }
    summary["bursts"] = sum(m.burst for m in messages)
    summary["ok"] = not any(summary[k] for k in ("lost", "duplicates", "leaks", "order_errors", "errors"))
    if summary["ok"] and not args.keep and not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        logger.info("Logs kept in %s", work_dir)
    return summary


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="Rasa replicas (default 2)")
    parser.add_argument("--action-servers", type=int, default=2, help="action servers (default 2)")
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default 20)")
    parser.add_argument("--messages", type=int, default=20, help="messages per user (default 20)")
    parser.add_argument("--model", help="trained memory_bot archive (default: train one, mostly from the cache)")
    parser.add_argument("--student", help="student directory for the action servers (default: the package's)")
    parser.add_argument("--endpoints", default=str(PRODUCTION_ENDPOINTS),
                        help="endpoints file of the replicas (default endpoints.production.yml); e.g. one without "
                             "lock_store shows what the Redis lock prevents")
    parser.add_argument("--work-dir", help="where logs go (default: a temporary directory, removed on success)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    for name in ("replicas", "action_servers", "users", "messages"):
        if getattr(args, name) < 1 or (name == "messages" and args.messages < 2):
            parser.error(f"--{name.replace('_', '-')} must be at least {2 if name == 'messages' else 1}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every server started is stopped again.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        summary = run(args)
    except ServerError as e:
        logger.error("%s", e)
        print(json.dumps({"replicas": args.replicas, "ok": False, "error": str(e)[:500]}))
        return 2
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
