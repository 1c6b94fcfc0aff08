"""Is the Hugging Face hub usable here, or is this run offline? One answer per process, for every hub path.

Offline means: the user said so (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``, as huggingface_hub reads them;
``HF_DATASETS_OFFLINE``, as datasets reads it), or a quick probe cannot open a TCP connection to the hub's host
(``huggingface_hub.constants.ENDPOINT``, or the HTTPS proxy the libraries would use) within
:data:`PROBE_TIMEOUT` seconds. The probe runs at most once per process. Without it an offline run spends
30-75 s in the libraries' retries (a ``Retrying in 8s`` line each) before it fails. ``PASR_HUB_PROBE=0``
skips the probe, for networks where it gets the answer wrong.

Offline, hub paths load only what the local HF cache holds (:func:`offline_mode` around a library call, or a
local-cache lookup) and otherwise fail at once with a PasrError that says what to pass instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

PROBE_TIMEOUT = 2.5
"""Seconds the probe waits for DNS and a TCP connect to the hub (or the proxy) together."""

PROBE_SWITCH = "PASR_HUB_PROBE"
"""Environment variable: ``0`` (or off/false/no) skips the probe and trusts the network."""


def offline_reason() -> str | None:
    """Why the hub cannot be used in this process (a short clause), or None when it can."""
    setting = _offline_setting()
    if setting is not None:
        return f"{setting} is set"
    failure = _probe()
    if failure is not None:
        host, port = probe_target()
        return f"{host}:{port} cannot be reached: {failure}; {PROBE_SWITCH}=0 skips this check"
    return None


def is_offline() -> bool:
    """True when hub paths should use only the local cache."""
    return offline_reason() is not None


def _offline_setting() -> str | None:
    """The offline variable the HF libraries honour, when one is set (read the way they read it)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:  # HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE, parsed at import by huggingface_hub
        only_transformers = os.environ.get("TRANSFORMERS_OFFLINE") and not os.environ.get("HF_HUB_OFFLINE")
        return "TRANSFORMERS_OFFLINE" if only_transformers else "HF_HUB_OFFLINE"
    datasets_config = sys.modules.get("datasets.config")  # datasets parses HF_DATASETS_OFFLINE at its import
    if datasets_config is not None:
        if getattr(datasets_config, "HF_HUB_OFFLINE", False):
            return "HF_DATASETS_OFFLINE"
    elif os.environ.get("HF_DATASETS_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES:
        return "HF_DATASETS_OFFLINE"
    return None


@functools.lru_cache(maxsize=1)
def _probe() -> str | None:
    """Why the hub's host cannot be reached (the socket error, or a timeout), or None when it can; run once."""
    if os.environ.get(PROBE_SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return None
    host, port = probe_target()
    return _connect_error(host, port, PROBE_TIMEOUT)


def probe_target() -> tuple[str, int]:
    """``(host, port)`` the probe connects to: the proxy for the hub's URL when one applies, else the hub."""
    from huggingface_hub import constants

    endpoint = urlsplit(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    scheme = endpoint.scheme or "https"
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    return host, endpoint.port or (443 if scheme == "https" else 80)


def _connect_error(host: str, port: int, timeout: float) -> str | None:
    """DNS + TCP connect in a daemon thread, so a hanging resolver cannot hold the caller past ``timeout``.

    None when the connection opened, else what went wrong.
    """
    answer: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(None)
        except OSError as error:
            answer.append(str(error) or type(error).__name__)

    thread = threading.Thread(target=attempt, name="pasr-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return answer[0] if answer else f"no answer within {timeout:g} s"


@contextlib.contextmanager
def offline_mode() -> Iterator[None]:
    """Within: huggingface_hub, transformers and datasets read only their local caches (as with HF_HUB_OFFLINE=1).

    The libraries read their offline flags from module globals at call time; this sets them and puts them back.
    """
    from huggingface_hub import constants

    flags = [(constants, "HF_HUB_OFFLINE")]
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        flags += [(datasets_config, "HF_HUB_OFFLINE"), (datasets_config, "HF_DATASETS_OFFLINE")]
    saved = [(module, name, getattr(module, name)) for module, name in flags if hasattr(module, name)]
    for module, name, _ in saved:
        setattr(module, name, True)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def load_dataset(hub_id: str, config: str | None = None, *, split: str, what: str, hint: str) -> object:
    """``datasets.load_dataset(hub_id, config, split=split)``; offline, from the local datasets cache only.

    Any failure (network, gating, missing config, not cached while offline) raises a one-line PasrError
    ``WHAT: cannot load HUB_ID (CONFIG, split SPLIT) from the hub: WHY. HINT`` (``hint`` says what to
    pass instead, e.g. ``Offline? Pass --data-file``).
    """
    from pasr.errors import PasrError

    offline = offline_reason()
    try:
        import datasets

        with offline_mode() if offline else contextlib.nullcontext():
            return datasets.load_dataset(hub_id, config, split=split)
    except Exception as error:  # noqa: BLE001 - network, gating, missing config: all end the same way
        if offline and isinstance(error, (ConnectionError, FileNotFoundError)):
            why = f"it is not in the local datasets cache and the hub cannot be used ({offline})"
        else:
            why = f"{type(error).__name__}: {error}"
        raise PasrError(
            f"{what}: cannot load {hub_id} ({config or 'default'}, split {split}) from the hub: {why}. {hint}"
        ) from error


def cached_model_folder(repo_id: str, markers: tuple[str, ...] = ("config.json",)) -> str | None:
    """The local HF cache's snapshot folder of model ``repo_id`` (its main revision) holding one of ``markers``.

    Reads the cache only (no network); None when nothing is cached.
    """
    from huggingface_hub import try_to_load_from_cache

    for marker in markers:
        try:
            found = try_to_load_from_cache(repo_id, marker)
        except ValueError:  # not a valid repo id
            return None
        if isinstance(found, str) and os.path.isfile(found):
            return os.path.dirname(found)
    return None
