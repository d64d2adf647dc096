"""JSON over HTTP with the standard library, for talking to the servers this example starts."""
import json
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple

from .processes import ServerError

HTTP_TIMEOUT_S = 30.0


def http_request(method: str, url: str, body: Any = None, headers: Optional[Dict[str, str]] = None,
                 timeout: float = HTTP_TIMEOUT_S) -> Tuple[int, Any]:
    """Send one JSON request; return (HTTP status, decoded JSON or None). HTTP errors are returned, not raised.

    ``body`` may be bytes (sent as is) or anything JSON-serializable.
    """
    data = body if isinstance(body, bytes) else (json.dumps(body).encode("utf-8") if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw.decode("utf-8") or "null")
    except ValueError:
        return status, raw[:500]


def http_json(method: str, url: str, body: Optional[Dict[str, Any]] = None, timeout: float = HTTP_TIMEOUT_S,
              headers: Optional[Dict[str, str]] = None) -> Any:
    """Send one JSON request and decode the JSON answer; raise ServerError on HTTP errors."""
    status, answer = http_request(method, url, body, headers=headers, timeout=timeout)
    if status >= 400:
        raise ServerError(f"{method} {url.split('?')[0]} answered HTTP {status}: {str(answer)[:500]}")
    return answer
