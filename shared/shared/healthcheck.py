"""A container's health probe without curl (slim images have none):

    python -m shared.healthcheck http://127.0.0.1:3001/health

Exit status 0 when the URL answers 2xx within the timeout, 1 otherwise. It imports
nothing but the standard library, so a probe every few seconds costs little.
"""

import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def check(url: str, timeout: float = TIMEOUT_SECONDS) -> bool:
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (checked above)
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared.healthcheck URL", file=sys.stderr)
        return 2
    return 0 if check(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
