"""Guards for the action server: a shared token on every call, and a /health that means "usable".

rasa_sdk builds its Sanic app ("rasa_sdk") before it imports this package, so importing the
package registers a request middleware on that app:

- ``/webhook`` and ``/actions`` need ``?token=<$MEMORY_BOT_ACTION_TOKEN>``, which Rasa sends from
  ``action_endpoint.token`` in endpoints.yml; anything else gets 401 (no token) or 403 (wrong token).
- ``/health`` answers 200 only when the student loads and the memory database can be written to,
  else 503 with the problems (readiness; it needs no token and tells nothing about users).

Outside an action server (tests, scripts) no app exists and nothing is registered.
"""
import hmac
import logging
from typing import List, Optional

try:  # imported as examples.memory_bot.actions (tests, the demo)
    from ..env_secrets import require_secret
except ImportError:  # the action server imports `actions` as a top-level package of the bot directory
    from env_secrets import require_secret

logger = logging.getLogger(__name__)

TOKEN_ENV = "MEMORY_BOT_ACTION_TOKEN"
MIN_TOKEN_CHARS = 16
SDK_APP_NAME = "rasa_sdk"
OPEN_PATHS = {"/health"}


class ActionTokenError(SystemExit):
    """The action server must not start: its token is unset or too short (SystemExit prints the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"memory_bot action server refuses to start: {reason}")


def load_token(environ=None) -> str:
    """``$MEMORY_BOT_ACTION_TOKEN``; raise ActionTokenError when unset or shorter than MIN_TOKEN_CHARS."""
    shared_with = (f"the same for the action server and for Rasa "
                   f"(endpoints.yml: action_endpoint.token: ${{{TOKEN_ENV}}})")
    return require_secret(TOKEN_ENV, MIN_TOKEN_CHARS, shared_with, ActionTokenError, environ)


def token_allows(given: Optional[str], expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def readiness_problems() -> List[str]:
    """Why the bot cannot serve memory right now (empty when it can)."""
    from . import actions, settings

    problems = []
    try:
        actions.get_encoder(settings.model_dir())
    except Exception as e:
        problems.append(f"student {settings.model_dir() or '(package default)'} unusable: {type(e).__name__}: {e}")
    from .memory import redact

    try:
        actions.get_store(settings.db_location()).check()
    except Exception as e:
        # redact(): a postgresql:// URL may carry a password; /health must not show it.
        problems.append(f"memory database {redact(settings.db_location())} unusable: {type(e).__name__}: "
                        f"{redact(str(e))}")
    return problems


def sdk_app():
    """The action server's Sanic app when this process is one, else None."""
    try:
        from sanic import Sanic

        return Sanic.get_app(SDK_APP_NAME)
    except Exception:  # no app of that name: not inside `rasa run actions`
        return None


def install(app=None) -> bool:
    """Register the token and readiness middleware on the action server's app; False when there is none."""
    app = app if app is not None else sdk_app()
    if app is None:
        return False
    if getattr(app.ctx, "memory_bot_guard", False):
        return True
    expected = load_token()
    from sanic import response

    async def guard(request):
        if request.method == "OPTIONS":
            return None
        if request.path == "/health":
            problems = readiness_problems()
            if problems:
                logger.error("Not ready: %s", "; ".join(problems))
                return response.json({"status": "unavailable", "problems": problems}, status=503)
            return response.json({"status": "ok"})
        given = request.args.get("token")
        if given is None:
            return response.json({"error": "the action server needs its token"}, status=401)
        if not token_allows(given, expected):
            logger.warning("Refused a call to %s with a wrong token.", request.path)
            return response.json({"error": "wrong token"}, status=403)
        return None

    app.register_middleware(guard, "request")
    app.ctx.memory_bot_guard = True
    logger.info("Action server: calls need %s; /health checks the student and the database.", TOKEN_ENV)
    return True
