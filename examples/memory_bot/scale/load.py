"""The load: every user sends their messages at once, round-robin over the replicas, some in pairs."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

from .. import auth_channel
from ..http_client import http_request
from .plan import Message, is_burst
from .stack import Stack

# A message waits for the others in Rasa's queue on a busy 2-core machine: allow minutes.
MESSAGE_TIMEOUT_S = 180.0


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
