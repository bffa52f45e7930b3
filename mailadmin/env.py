"""Typed readers for the environment: fail loudly on a malformed value."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    """Return NAME, or the contents of the file named by NAME_FILE (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def parse_host_port(value: str, *, name: str, default_port: int) -> tuple[str, int]:
    """Parse 'host:port', '[::1]:port' or 'host' into (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        port_text = rest.removeprefix(":") if sep else ""
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, ""
    if not host:
        raise ImproperlyConfigured(f"{name} needs a host, not {value!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ImproperlyConfigured(f"{name} has an invalid port in {value!r}")
    return host, int(port_text)


def env_bind(name: str, default: str, *, default_port: int) -> tuple[str, int]:
    return parse_host_port(env_str(name, default), name=name, default_port=default_port)


def env_url(name: str, default: str) -> str:
    """An http(s) base URL without its trailing slash (links in mail are built on it)."""
    from urllib.parse import urlsplit

    raw = env_str(name, default).strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL such as https://mail.example.org, "
            f"not {raw!r}"
        )
    return raw.rstrip("/")


def env_nameservers(name: str) -> list[tuple[str, int]]:
    """'127.0.0.1:5353, ::1' -> [('127.0.0.1', 5353), ('::1', 53)]; empty = system resolver."""
    raw = env_str(name)
    result = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if part.count(":") > 1 and not part.startswith("["):
            result.append((part, 53))  # a bare IPv6 address
        else:
            result.append(parse_host_port(part, name=name, default_port=53))
    return result


def generated_once(path: Path, make: Callable[[], str]) -> str:
    """The contents of `path`, written with `make()` by whichever process comes first.

    The web server, the worker and the SMTP listener start together in development: the
    file is linked into place atomically, so they all read the same value.
    """
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(make())
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process won; read its value
        finally:
            draft.unlink()
    return path.read_text().strip()


NEW_FERNET_KEY_COMMAND = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def parse_fernet_keys(raw: str, *, name: str) -> list[str]:
    """'new,old' -> ['new', 'old']: Fernet keys (32 bytes, url-safe base64), first = current.

    Messages name the variable and the position, never the key itself.
    """
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured(f"{name} holds no key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:  # also binascii.Error and UnicodeEncodeError
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key (32 bytes in url-safe base64; "
                f"make one with {NEW_FERNET_KEY_COMMAND})"
            ) from None
    return keys
