"""The TRL adapter: every private TRL name pasr declares exists as declared, and nothing else in pasr reaches in.

(a) each entry of ``TRL_PRIVATE_API`` resolves in the installed trl with its declared parameters and source;
(b) a scan of ``src/pasr`` fails when a module other than ``pasr/train/trl_adapter.py`` imports a TRL internal
module, overrides or calls a private TRL method, or reads a private TRL attribute.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import trl
from trl import GRPOTrainer, SFTTrainer

from pasr.train import trl_adapter
from pasr.train.trl_adapter import TRL_PRIVATE_API, PrivateUse

SRC = Path(__file__).resolve().parents[1] / "src" / "pasr"
ADAPTER = SRC / "train" / "trl_adapter.py"


def resolve(path: str):
    """The object at dotted ``path`` (longest importable module prefix, then attributes); AttributeError if absent."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if name.startswith("_") and not name.startswith("__") and isinstance(obj, type) \
                    and name not in vars_of(obj):
                raise AttributeError(f"{path}: {obj.__name__} has no {name}")
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def vars_of(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass)}


def test_pinned_version():
    assert trl.__version__ == trl_adapter.TRL_VERSION, "the adapter is written against this trl release"


@pytest.mark.parametrize("use", TRL_PRIVATE_API, ids=lambda u: u.target.removeprefix("trl."))
def test_declared_private_api_exists_as_declared(use: PrivateUse):
    owner_path, _, name = use.target.rpartition(".")
    owner = resolve(owner_path)
    if isinstance(owner, type) and name.startswith("_") and not name.startswith("__") and name not in vars_of(owner):
        # an instance attribute (set in __init__): its source entry says where
        assert use.source and use.source_of, f"{use.target} is no class attribute; declare where it is set"
    else:
        obj = resolve(use.target)
        if use.params is not None:
            params = list(inspect.signature(obj).parameters)
            assert params[: len(use.params)] == list(use.params), f"{use.target}{inspect.signature(obj)}"
    if use.source:
        text = inspect.getsource(resolve(use.source_of or use.target))
        for snippet in use.source:
            assert snippet in text, f"{use.source_of or use.target} no longer contains {snippet!r}"


def test_every_private_name_the_adapter_uses_is_declared():
    """Each ``x._name`` the adapter reads or overrides (of TRL's) has an entry, so the list is the whole truth."""
    declared = {use.target.rsplit(".", 1)[1] for use in TRL_PRIVATE_API}
    used = private_uses(ast.parse(ADAPTER.read_text()), trl_private_names())
    assert {name for _, name in used if name.isidentifier()} <= declared


def test_the_trainer_builds_vllm_generation_by_its_module_name():
    import trl.trainer.grpo_trainer as grpo_module
    from trl.generation.vllm_generation import VLLMGeneration

    assert grpo_module.VLLMGeneration is VLLMGeneration is trl_adapter.trl_vllm_generation()
    hooked = trl_adapter.hooked_vllm_generation()
    assert issubclass(hooked, VLLMGeneration) and {"_init_vllm", "sync_weights"} <= set(vars(hooked))
    with trl_adapter.swap_vllm_generation(hooked):
        assert grpo_module.VLLMGeneration is hooked
    assert grpo_module.VLLMGeneration is VLLMGeneration


def test_resolve_refuses_a_missing_name():
    with pytest.raises(AttributeError):
        resolve("trl.trainer.grpo_trainer.GRPOTrainer._no_such_method")


def test_common_prefix_length_is_trls():
    from trl.data_utils import common_prefix_length

    for a, b in (([1, 2, 3], [1, 2, 4]), ([], [1]), ([5, 6], [5, 6, 7]), ([1], [2])):
        assert trl_adapter.common_prefix_length(a, b) == common_prefix_length(a, b)


def test_log_metric_and_reward_kwargs():
    from collections import defaultdict
    from types import SimpleNamespace

    trainer = SimpleNamespace(model=SimpleNamespace(training=False),
                              _metrics={"train": defaultdict(list), "eval": defaultdict(list)})
    trl_adapter.log_metric(trainer, "time/x", 1.5)
    trl_adapter.log_metric(trainer, "time/x", 2.0, mode="train")
    assert trainer._metrics["eval"]["time/x"] == [1.5] and trainer._metrics["train"]["time/x"] == [2.0]
    assert trl_adapter.reward_step({"trainer_state": SimpleNamespace(global_step=4)}) == 5
    assert trl_adapter.reward_step({}) is None and trl_adapter.reward_metric_logger({}) is None


# --- (b) nobody else reaches into TRL ------------------------------------------------------------------------


def trl_private_names() -> set[str]:
    """Underscore (non-dunder) names TRL defines on the classes pasr builds on, and those the adapter declares."""
    from trl.generation.vllm_client import VLLMClient
    from trl.generation.vllm_generation import VLLMGeneration

    names = {use.target.rsplit(".", 1)[1] for use in TRL_PRIVATE_API}
    for cls in (GRPOTrainer, SFTTrainer, VLLMGeneration, VLLMClient):
        for klass in cls.__mro__:
            if klass.__module__.startswith("trl"):
                names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
        names |= private_attributes_set_in(cls)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_attributes_set_in(cls: type) -> set[str]:
    """``self._x`` that TRL's own methods of ``cls`` assign (instance attributes such as ``_metrics``)."""
    import textwrap

    found = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("trl"):
            continue
        for value in vars(klass).values():
            if not inspect.isfunction(value):
                continue
            try:
                tree = ast.parse(textwrap.dedent(inspect.getsource(value)))
            except (OSError, TypeError, SyntaxError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                        and isinstance(node.value, ast.Name) and node.value.id == "self":
                    found.add(node.attr)
    return found


def trl_method_params() -> dict[str, tuple[str, ...]]:
    """TRL's trainer methods with a private name -> their parameter names (what a mixin overriding one takes)."""
    from trl import GRPOTrainer, SFTTrainer

    found: dict[str, tuple[str, ...]] = {}
    for cls in (GRPOTrainer, SFTTrainer):
        for klass in cls.__mro__:
            if not klass.__module__.startswith("trl"):
                continue
            for name, value in vars(klass).items():
                if name.startswith("_") and not name.startswith("__") and inspect.isfunction(value):
                    found.setdefault(name, tuple(inspect.signature(value).parameters))
    return found


def _dotted(node: ast.AST) -> list[str] | None:
    """``trl.trainer.grpo_trainer`` -> ["trl", "trainer", "grpo_trainer"]; None unless a chain of names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def private_uses(tree: ast.AST, private: set[str], methods: dict[str, tuple[str, ...]] | None = None,
                 ) -> list[tuple[int, str]]:
    """``(line, what)`` for each use of TRL's private API in a module's syntax tree.

    A name of ``private`` is a use when read on anything but ``self``, or on ``self`` / defined as a method in a
    class that has a base class (it may be TRL's). A class without bases owns its private names, unless it
    defines one of TRL's trainer methods (``methods``: name -> parameters) with TRL's parameters: a mixin
    overriding it. An attribute chain into a TRL module (``trl.trainer.grpo_trainer.X`` after ``import trl``)
    is a use too; ``trl.GRPOTrainer`` is public.
    """
    hits = []
    methods = methods if methods is not None else trl_method_params()
    trl_names = {"trl"} | {a.asname for n in ast.walk(tree) if isinstance(n, ast.Import)
                           for a in n.names if a.name == "trl" and a.asname}

    def visit(node: ast.AST, owner_has_bases: bool) -> None:
        if isinstance(node, ast.ClassDef):
            bases = [b for b in node.bases if getattr(b, "id", None) not in ("object", "Protocol")]
            owner_has_bases = bool(bases)
            for item in node.body:
                if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or item.name not in private:
                    continue
                params = tuple(a.arg for a in [*item.args.posonlyargs, *item.args.args])
                trl_params = methods.get(item.name)
                mixin = trl_params is not None and len(params) > 1 and params == trl_params[:len(params)]
                if owner_has_bases or mixin:
                    hits.append((item.lineno, item.name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("trl."):
                hits.append((node.lineno, f"from {node.module} import"))
            elif node.module == "trl":
                hits.extend((node.lineno, f"from trl import {a.name}") for a in node.names if a.name.startswith("_"))
        elif isinstance(node, ast.Import):
            hits.extend((node.lineno, f"import {a.name}") for a in node.names if a.name.startswith("trl."))
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain[0] in trl_names and len(chain) >= 3:
                hits.append((node.lineno, ".".join(["trl", *chain[1:]])))
                return  # one hit per chain, not one per link
            if node.attr in private:
                on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
                if owner_has_bases or not on_self:
                    hits.append((node.lineno, node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", None) == "super" \
                and node.func.attr.startswith("_") and not node.func.attr.startswith("__"):
            hits.append((node.lineno, f"super().{node.func.attr}()"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("trl.") \
                and " " not in node.value:
            hits.append((node.lineno, f"string {node.value!r}"))
        for child in ast.iter_child_nodes(node):
            visit(child, owner_has_bases)

    visit(tree, False)
    return hits


def scan(root: Path, private: set[str]) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        if path == ADAPTER:
            continue
        for line, what in private_uses(ast.parse(path.read_text(), str(path)), private):
            problems.append(f"{path.relative_to(root.parent)}:{line}: {what}")
    return problems


def test_only_the_adapter_touches_trl_private_api():
    problems = scan(SRC, trl_private_names())
    assert not problems, "TRL private API outside pasr/train/trl_adapter.py (move it there and declare it):\n" + \
        "\n".join(problems)


@pytest.mark.parametrize("code, found", [
    ("from trl.trainer.grpo_trainer import GRPOTrainer\n", "from trl.trainer.grpo_trainer import"),
    ("import trl.generation.vllm_client\n", "import trl.generation.vllm_client"),
    ("from trl import _private\n", "from trl import _private"),
    ("def f(trainer):\n    return trainer._tokenize_prompts([])\n", "_tokenize_prompts"),
    ("class R:\n    def f(self):\n        return self.trainer._generate_single_turn(1, 2, 3, 4)\n", "_generate_single_turn"),
    ("def f(t):\n    t._metrics['train']['x'].append(1)\n", "_metrics"),
    ("class T(GRPOTrainer):\n    def _generate(self, prompts):\n        return 1\n", "_generate"),
    ("class T(Base):\n    def f(self):\n        return super()._anything()\n", "super()._anything()"),
    ("import importlib\nm = importlib.import_module('trl.scripts.vllm_serve')\n", "string 'trl.scripts.vllm_serve'"),
    # a base-less mixin overriding TRL's methods with their signatures, then mixed into a trainer elsewhere
    ("class Hooks:\n    def _generate_and_score_completions(self, inputs):\n        return inputs\n",
     "_generate_and_score_completions"),
    ("class Hooks:\n    def _compute_loss(self, model, inputs):\n        return 0\n", "_compute_loss"),
    # attribute chains into TRL's modules after a plain `import trl`
    ("import trl\nX = trl.trainer.grpo_trainer.VLLMGeneration\n", "trl.trainer.grpo_trainer.VLLMGeneration"),
    ("import trl as t\nf = t.generation.vllm_client\n", "trl.generation.vllm_client"),
])
def test_scan_catches_a_newcomers_private_use(tmp_path, code, found):
    """What a new module could add without the adapter: each is caught."""
    pkg = tmp_path / "pasr"
    pkg.mkdir()
    (pkg / "newcomer.py").write_text("from trl import GRPOTrainer\n" + code)
    problems = scan(pkg, trl_private_names())
    assert len(problems) == 1 and problems[0].endswith(found), problems


def test_scan_passes_public_use(tmp_path):
    pkg = tmp_path / "pasr"
    pkg.mkdir()
    (pkg / "ok.py").write_text("from trl import GRPOTrainer, SFTTrainer\n\nclass T(GRPOTrainer):\n"
                               "    def training_step(self, *a):\n        self._mine = 1\n"
                               "        return super().training_step(*a)\n\n"
                               "class Backend:\n    def _generate(self):\n        return self._generate()\n\n"
                               "class Async:\n    async def _generate(self, conversations, max_tokens):\n"
                               "        return []\n\n"
                               "import trl\nT = trl.GRPOTrainer\n")
    assert scan(pkg, trl_private_names()) == []


def test_aggregate_like_loss_follows_each_loss_type():
    """The per-loss-type sums of TRL's GRPO loss (its source is pinned by the ``_compute_loss`` entry above)."""
    from types import SimpleNamespace

    import torch

    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    inputs = {"completion_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]), "tool_mask": torch.tensor([[1, 0, 1], [1, 1, 1]]),
              "num_items_in_batch": torch.tensor(8.0)}
    trainer = SimpleNamespace(model=SimpleNamespace(training=True), current_gradient_accumulation_steps=2,
                              max_completion_length=5, accelerator=SimpleNamespace(num_processes=2),
                              args=SimpleNamespace(steps_per_generation=4))
    expected = {"grpo": ((1 + 3) / 2 + 4 / 2) / 2 / 2, "sapo": ((1 + 3) / 2 + 4 / 2) / 2 / 2, "bnpo": 8 / 4 / 2,
                "dr_grpo": 8 / (2 * 5) / 2, "dapo": 8 / (8 / 2 * 2 / 4), "luspo": (4 + 4) / 2 / 2}
    for loss_type, value in expected.items():
        trainer.loss_type = loss_type
        assert trl_adapter.aggregate_like_loss(trainer, x, inputs).item() == pytest.approx(value), loss_type
    trainer.loss_type = "nope"
    with pytest.raises(ValueError):
        trl_adapter.aggregate_like_loss(trainer, x, inputs)
    assert torch.equal(trl_adapter.loss_mask(inputs), torch.tensor([[1, 0, 1], [1, 1, 0]]))
    assert {"_compute_loss", "_get_per_token_logps_and_entropies", "_generate_and_score_completions"} <= \
        set(vars(trl_adapter.LossHooks))
