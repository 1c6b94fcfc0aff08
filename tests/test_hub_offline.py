"""Offline hub paths fail at once with the helpful message, or load from the local HF cache (pasr.hub)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasr import hub, models
from pasr.cli import app
from pasr.data.benchmarks import load_benchmark
from pasr.errors import PasrError

HUB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DATA_HINT = "Offline? Pass --data-file or --data-dir with gsm8k.jsonl."
MODEL_HINT = "Offline? Use a built-in model (smollm2-135m-instruct, tiny-random) or a local model folder"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", hub.PROBE_SWITCH)
FAST = 5.0
"""Seconds an offline failure may take, Python start-up and imports included."""

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_probe():
    hub._probe.cache_clear()
    yield
    hub._probe.cache_clear()


@pytest.fixture
def online_settings(monkeypatch):
    """No offline variable in force (conftest sets them for the whole suite): only the probe decides."""
    import datasets.config
    from huggingface_hub import constants

    for name in OFFLINE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)


@pytest.fixture
def probe_offline(online_settings, monkeypatch):
    """The probe finds no hub; the library flags stay 'online', so only pasr.hub can make the call fast."""
    monkeypatch.setattr(hub, "_probe", lambda: "[Errno -2] Name or service not known")


def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS and not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def _pasr(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from pasr.cli import main; main()", *args], env=env,
                          capture_output=True, check=False, text=True, timeout=timeout)
    return done, time.perf_counter() - started


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the probe and the settings ---------------------------------------------------------------------------------


def test_offline_variable_decides_without_a_probe(online_settings, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(hub, "_connect_error", lambda *a: pytest.fail("probed although offline was set"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.offline_reason() == "HF_HUB_OFFLINE is set" and hub.is_offline()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert hub.offline_reason() == "HF_DATASETS_OFFLINE is set"


def test_probe_reaches_a_listening_host_once(online_settings, monkeypatch):
    from huggingface_hub import constants

    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub.probe_target() == ("127.0.0.1", port)
        calls = []
        real = hub._connect_error
        monkeypatch.setattr(hub, "_connect_error", lambda *a: calls.append(a) or real(*a))
        assert hub.offline_reason() is None and hub._probe() is None and not hub.is_offline()
        assert len(calls) == 1  # one probe per process
    hub._probe.cache_clear()
    closed = _closed_port()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
    reason = hub.offline_reason()
    assert reason.startswith(f"127.0.0.1:{closed} cannot be reached: ") and "PASR_HUB_PROBE=0" in reason


def test_probe_gives_up_on_a_hanging_resolver(online_settings, monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(hub.socket, "create_connection", hang)
    monkeypatch.setattr(hub, "PROBE_TIMEOUT", 0.3)
    started = time.perf_counter()
    try:
        reason = hub.offline_reason()
    finally:
        release.set()
    assert time.perf_counter() - started < 2
    assert "no answer within 0.3 s" in reason


def test_probe_switch_trusts_the_network(online_settings, monkeypatch):
    monkeypatch.setattr(hub, "_connect_error", lambda *a: pytest.fail("probed although PASR_HUB_PROBE=0"))
    monkeypatch.setenv(hub.PROBE_SWITCH, "0")
    assert hub.offline_reason() is None


def test_probe_goes_to_the_proxy_the_libraries_use(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://huggingface.co")
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert hub.probe_target() == ("huggingface.co", 443)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub.probe_target() == ("proxy.example", 3128)
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    assert hub.probe_target() == ("huggingface.co", 443)


def test_offline_mode_sets_the_library_flags_and_puts_them_back(online_settings):
    import datasets.config
    from huggingface_hub import constants

    with hub.offline_mode():
        assert constants.HF_HUB_OFFLINE and constants.is_offline_mode() and datasets.config.HF_HUB_OFFLINE
    assert not constants.HF_HUB_OFFLINE and not datasets.config.HF_HUB_OFFLINE


# --- datasets ------------------------------------------------------------------------------------------------------


def test_probe_offline_hub_dataset_fails_at_once(probe_offline):
    started = time.perf_counter()
    with pytest.raises(PasrError) as err:
        load_benchmark("gsm8k", limit=2)
    assert time.perf_counter() - started < FAST
    message = str(err.value)
    assert "cannot load openai/gsm8k" in message and "not in the local datasets cache" in message
    assert "Name or service not known" in message and message.endswith(DATA_HINT)


def test_probe_offline_wizardlm_training_data_fails_at_once(probe_offline):
    from pasr.train.data import load_wizardlm

    started = time.perf_counter()
    with pytest.raises(PasrError) as err:
        load_wizardlm()
    assert time.perf_counter() - started < FAST
    message = str(err.value)
    assert message.startswith("wizardlm: cannot load WizardLMTeam/WizardLM_evol_instruct_70k")
    assert "not in the local datasets cache" in message and "Offline? Pass --data_file" in message


def _cache_gsm8k(cache: Path) -> None:
    """A prepared ``openai/gsm8k`` (config main, split test) in datasets cache ``cache``, as load_dataset leaves it."""
    from datasets.packaged_modules.json.json import Json

    rows = cache.parent / "gsm8k-rows.jsonl"
    rows.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": f"{i} + 1\n#### {i + 1}"}) + "\n"
                            for i in range(3)))
    builder = Json(cache_dir=str(cache), dataset_name="openai___gsm8k", config_name="main", config_id="main",
                   data_files={"test": str(rows)}, hash="0" * 16)
    builder.download_and_prepare()
    folder = cache / "openai___gsm8k" / "main" / "0.0.0" / ("0" * 16)
    (folder / "openai___gsm8k-test.arrow").rename(folder / "gsm8k-test.arrow")  # the name a hub download gets


def test_cached_hub_dataset_loads_offline(probe_offline, tmp_path, monkeypatch):
    import datasets.config

    cache = tmp_path / "datasets"
    _cache_gsm8k(cache)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    started = time.perf_counter()
    records = load_benchmark("gsm8k")
    assert time.perf_counter() - started < FAST
    assert [r.reference for r in records] == ["0 + 1\n#### 1", "1 + 1\n#### 2", "2 + 1\n#### 3"]
    assert records[0].meta["source"] == "hub:openai/gsm8k"


def test_cli_cached_hub_dataset_with_offline_variable(tmp_path):
    env = _cli_env(tmp_path, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "datasets"))
    _cache_gsm8k(tmp_path / "datasets")
    done, _ = _pasr(["data", "show", "gsm8k", "--limit", "2"], env)
    assert done.returncode == 0, done.stderr
    assert "2 of 3 gsm8k records" in done.stdout and "hub openai/gsm8k" in done.stdout


# --- models --------------------------------------------------------------------------------------------------------


def test_probe_offline_hub_model_fails_at_once(probe_offline, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for call in (models.resolve, models.load_tokenizer, models.load_model):
        with pytest.raises(PasrError) as err:
            call(HUB_MODEL)
        message = str(err.value)
        assert message.startswith(f"model {HUB_MODEL!r}: not in the local HF cache, and the hub cannot be used")
        assert MODEL_HINT in message


def _cache_model(hub_cache: Path, repo_id: str) -> Path:
    """The built-in tiny-random model as the snapshot of ``repo_id`` in HF hub cache ``hub_cache``."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(models.resolve("tiny-random"), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_cached_hub_model_loads_offline(probe_offline, tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = _cache_model(tmp_path / "hub", "someone/tiny-model")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert models.resolve("someone/tiny-model") == str(snapshot)
    tokenizer = models.load_tokenizer("someone/tiny-model")
    model = models.load_model("someone/tiny-model")
    assert tokenizer.pad_token is not None and model.config.num_hidden_layers == 2


def test_hub_model_passes_through_online(online_settings, monkeypatch):
    monkeypatch.setattr(hub, "_probe", lambda: None)
    assert models.resolve(HUB_MODEL) == HUB_MODEL


# --- the CLI: rc 2 and one line at once, whatever says offline ------------------------------------------------------


def _check_fast_failure(done: subprocess.CompletedProcess, seconds: float, hint: str) -> None:
    assert done.returncode == 2, done.stderr
    assert seconds < FAST, f"{seconds:.1f} s"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and hint in lines[0], done.stderr
    assert "Retrying" not in done.stderr


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "probe"])
def test_cli_offline_hub_dataset_and_model_fail_at_once(tmp_path, how):
    if how == "probe":  # a hub endpoint nobody listens on: the real probe, no variable set
        env = _cli_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    else:
        env = _cli_env(tmp_path, **{how: "1"})
    out = tmp_path / "run"
    done, seconds = _pasr(["eval", "--model", "tiny-random", "--benchmark", "gsm8k", "--limit", "2",
                           "--output", str(out)], env)
    _check_fast_failure(done, seconds, DATA_HINT)
    done, seconds = _pasr(["data", "show", "gsm8k"], env)
    _check_fast_failure(done, seconds, DATA_HINT)
    done, seconds = _pasr(["eval", "--model", HUB_MODEL, "--benchmark", "synthetic", "--limit", "2",
                           "--output", str(out)], env)
    _check_fast_failure(done, seconds, MODEL_HINT)
    assert not out.exists()  # the model is checked before the run folder is written


def test_cli_probe_monkeypatched_offline(probe_offline, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "run"
    for args, hint in [(["--model", "tiny-random", "--benchmark", "gsm8k"], DATA_HINT),
                       (["--model", HUB_MODEL, "--benchmark", "synthetic"], MODEL_HINT)]:
        started = time.perf_counter()
        result = runner.invoke(app, ["eval", *args, "--limit", "2", "--output", str(out)])
        assert time.perf_counter() - started < FAST
        assert result.exit_code == 2 and hint in result.output, result.output
    assert not out.exists()


@pytest.mark.slow
def test_cli_probe_skipped_but_no_network_still_ends_with_the_hint(tmp_path):
    """PASR_HUB_PROBE=0 and no hub: the libraries retry (25-55 s), then the same hints."""
    hub._probe.cache_clear()
    if hub._connect_error("huggingface.co", 443, hub.PROBE_TIMEOUT) is None:
        pytest.skip("the hub is reachable from here")
    env = _cli_env(tmp_path, PASR_HUB_PROBE="0")
    done, _ = _pasr(["data", "show", "gsm8k"], env, timeout=300)
    assert done.returncode == 2 and DATA_HINT in done.stderr.strip().splitlines()[-1], done.stderr
    done, _ = _pasr(["eval", "--model", HUB_MODEL, "--benchmark", "synthetic", "--limit", "2",
                     "--output", str(tmp_path / "run")], env, timeout=300)
    assert done.returncode == 2 and MODEL_HINT in done.stderr.strip().splitlines()[-1], done.stderr


def _adapter_over(base_folder: str, repo_id: str, folder: Path) -> Path:
    """A LoRA adapter trained on nothing over ``base_folder``, saved as if its base were hub model ``repo_id``."""
    from peft import LoraConfig, get_peft_model

    base = models.load_model(base_folder)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = repo_id
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_adapter_over_a_hub_base_loads_it_from_the_cache_offline(probe_offline, tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = _cache_model(tmp_path / "hub", "someone/tiny-model")
    adapter = _adapter_over(str(snapshot), "someone/tiny-model", tmp_path / "adapter")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.perf_counter()
    model = models.load_model(str(adapter))
    assert time.perf_counter() - started < FAST
    assert model.config.num_hidden_layers == 2 and any("lora" in name for name, _ in model.named_parameters())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    started = time.perf_counter()
    with pytest.raises(PasrError, match="Offline\\? Use a built-in model"):
        models.load_model(str(adapter))
    assert time.perf_counter() - started < FAST
