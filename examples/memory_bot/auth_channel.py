"""`auth_rest`: memory_bot's only input channel, a REST webhook that trusts a signed token, never the body.

    POST /webhooks/auth_rest/webhook
    Authorization: Bearer <JWT, HS256, signed with $MEMORY_BOT_JWT_SECRET, with `sub` and `exp`>
    {"message": "remember that my locker code is 4411"}

The conversation (and so the memory) is the token's ``sub`` claim; a ``sender`` in the body is
ignored. A missing, malformed, wrongly signed or expired token gets HTTP 401 before the body is
read, so nothing reaches Rasa and nothing is stored. Tokens are minted by whoever authenticates the
user (a website's login, see README.md); ``mint_token`` does it for the demo and the tests.

Rasa loads this module by the name given in credentials.yml (``auth_channel.AuthenticatedRestInput``):
run Rasa in this directory (``rasa`` puts the working directory on ``sys.path``) or put this directory
on ``PYTHONPATH``. Of the bot, the module imports only env_secrets.py.
"""
import logging
import time
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import jwt
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage

try:  # imported as examples.memory_bot.auth_channel (tests, the demo)
    from .env_secrets import require_secret
except ImportError:  # imported by Rasa as a top-level module of the bot directory
    from env_secrets import require_secret

logger = logging.getLogger(__name__)

SECRET_ENV = "MEMORY_BOT_JWT_SECRET"
# HS256 keys shorter than the hash (32 bytes) are guessable offline from one token.
MIN_SECRET_CHARS = 32
ALGORITHM = "HS256"
# Tokens without an expiry are refused; a few seconds of clock skew are tolerated.
LEEWAY_S = 10
DEFAULT_TTL_S = 15 * 60
MAX_SUB_CHARS = 128
# What one message may add to the tracker: longer texts are cut (the memory keeps 2,000 of them).
MAX_MESSAGE_CHARS = 4000
# Bodies larger than this are refused unread (HTTP 413).
MAX_BODY_BYTES = 4 * 1024 * 1024
# The id Rasa gives conversations without a sender; never a signed-in user.
ANONYMOUS_SENDER = "default"

# Replies the channel gives itself (same wording as the actions where they overlap).
NO_TEXT = "I didn't get any text. What should I do?"
UNAVAILABLE = ("Sorry, my memory is unavailable right now, so I could not save or look up anything "
               "for that message. Please send it again in a moment.")


class ChannelConfigError(ValueError):
    """The channel cannot start (no token could be verified): its secret is missing or too weak."""


def load_secret(environ: Optional[Dict[str, str]] = None) -> str:
    """The HS256 secret from ``$MEMORY_BOT_JWT_SECRET``; raise ChannelConfigError when unset or short."""
    return require_secret(SECRET_ENV, MIN_SECRET_CHARS, "shared only with the server that signs the tokens",
                          ChannelConfigError, environ)


def mint_token(sub: str, secret: Optional[str] = None, ttl_s: float = DEFAULT_TTL_S,
               now: Optional[float] = None, **claims: Any) -> str:
    """A token for user ``sub``, as a website's login would issue it (server side, never in the browser).

    Args:
        sub: the user's stable id in the site's own user database.
        secret: the shared secret; ``$MEMORY_BOT_JWT_SECRET`` when None.
        ttl_s: seconds until the token expires.
        now: Unix time of issue (tests pass a past time to mint an expired token).
        claims: extra claims to include.
    """
    if not isinstance(sub, str) or not sub.strip():
        raise ValueError(f"sub={sub!r} is invalid; pass the user's non-empty id.")
    issued = time.time() if now is None else float(now)
    payload = {"sub": sub, "iat": int(issued), "exp": int(issued + ttl_s), **claims}
    return jwt.encode(payload, secret if secret is not None else load_secret(), algorithm=ALGORITHM)


def verify_token(token: str, secret: str) -> str:
    """The ``sub`` of a valid token; raise ``jwt.InvalidTokenError`` (or ValueError) otherwise."""
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], leeway=LEEWAY_S,
                        options={"require": ["sub", "exp"]})
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB_CHARS or sub == ANONYMOUS_SENDER:
        raise ValueError(f"the token's sub claim {str(sub)[:40]!r} is not a usable user id")
    return sub


def bearer_token(request: Request) -> Optional[str]:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    header = request.headers.get("Authorization") or ""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthorized(reason: str) -> HTTPResponse:
    return response.json({"error": "unauthorized", "reason": reason}, status=401,
                         headers={"WWW-Authenticate": 'Bearer realm="memory_bot"'})


class AuthenticatedRestInput(InputChannel):
    """REST webhook whose sender id is the ``sub`` of a verified HS256 token."""

    @classmethod
    def name(cls) -> Text:
        return "auth_rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "AuthenticatedRestInput":
        # The secret never lives in credentials.yml: only the environment holds it.
        return cls(load_secret())

    def __init__(self, secret: str) -> None:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ChannelConfigError(f"the token secret must have at least {MIN_SECRET_CHARS} characters.")
        self.secret = secret

    def authenticate(self, request: Request) -> Optional[str]:
        """The verified sender id of ``request``, or None (the reason is logged)."""
        token = bearer_token(request)
        if token is None:
            logger.info("auth_rest: refused a request without a bearer token.")
            return None
        try:
            return verify_token(token, self.secret)
        except (jwt.InvalidTokenError, ValueError) as e:
            logger.info("auth_rest: refused a token: %s", e)
            return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            sender_id = self.authenticate(request)
            if sender_id is None:  # before the body is even parsed
                return unauthorized("a valid 'Authorization: Bearer <token>' header is required")
            if len(request.body or b"") > MAX_BODY_BYTES:
                return response.json({"error": f"body over {MAX_BODY_BYTES} bytes"}, status=413)
            try:
                body = request.json
            except Exception:  # Sanic raises InvalidUsage on malformed JSON
                return response.json({"error": "the body is not JSON"}, status=400)
            text = body.get("message") if isinstance(body, dict) else None
            if not isinstance(text, str) or not text.strip():
                return response.json([{"recipient_id": sender_id, "text": NO_TEXT}])
            text = text[:MAX_MESSAGE_CHARS]
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender_id, input_channel=self.name()))
            except CancelledError:
                logger.error("auth_rest: handling a message of %r timed out.", sender_id)
            except Exception:
                logger.exception("auth_rest: handling a message of %r failed.", sender_id)
            messages: List[Dict[str, Any]] = collector.messages
            if not messages:
                # Every route answers when all is well; silence means the action server (memory) failed.
                logger.error("auth_rest: no reply for %r (is the action server up and its token right?).",
                             sender_id)
                messages = [{"recipient_id": sender_id, "text": UNAVAILABLE}]
            return response.json(messages)

        return webhook
