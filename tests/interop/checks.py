"""What the Python interop checks share: the server under test and the check helpers."""

import os
from urllib.parse import urlsplit

BASE = os.environ["HANGAR_URL"].rstrip("/")
MCP = BASE + "/api/experimental/mcp/http"
ADMIN = {"email": "admin@example.com", "username": "admin", "password": "SomeSecurePassword!"}


class CheckFailed(Exception):
    pass


def step(msg):
    print(f"-- {msg}", flush=True)


def check(cond, what, detail=""):
    if not cond:
        raise CheckFailed(f"{what}{': ' + str(detail) if detail != '' else ''}")
    print(f"   ok: {what}", flush=True)


def origin(url):
    p = urlsplit(str(url))
    return f"{p.scheme}://{p.netloc}"
