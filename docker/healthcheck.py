"""The container's health check: exit 0 when Troupe's ``/healthz`` answers 200, else 1.

Docker keeps what this prints with each check (``docker inspect``), so a failure prints why:
the status and the start of ``/healthz``'s body, which names the failing checks. The port is
``TROUPE_HEALTH_PORT`` (8080 in the image). Only the standard library: the image has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "8080"
#: Seconds to wait for an answer; Docker's own ``timeout`` should be longer.
TIMEOUT = 5.0
#: How much of an unhealthy answer's body to print.
MAX_BODY = 500


def check(port: str, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """Ask ``/healthz`` on ``127.0.0.1:port``: whether it is healthy, and a line saying so."""
    url = f"http://127.0.0.1:{port}/healthz"
    # No proxy: an HTTP_PROXY set for the bot's outgoing calls must not swallow this one.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return True, f"{url}: {response.status}"
    except urllib.error.HTTPError as error:
        body = error.read(MAX_BODY).decode("utf-8", "replace")
        return False, f"{url}: {error.code} {body}"
    except OSError as error:
        return False, f"{url}: {error}"


def main() -> int:
    """Run the check once and return the exit code Docker expects (0 healthy, 1 not)."""
    healthy, line = check(os.environ.get("TROUPE_HEALTH_PORT", "").strip() or DEFAULT_PORT)
    print(line)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
