"""Checks of every option before any work starts: recipes, ``--field value`` overrides, paths.

``pasr train`` / ``pasr sft`` / ``pasr star`` read a YAML recipe plus ``--field value`` flags into
TRL-style dataclasses. TRL and transformers check only some values, and some of those checks
come after work has started (a batch size of 0 fails once the model is loaded and the output
folder made) or fail with a bare ``ZeroDivisionError``. Here every bad value is refused up
front with one line that names the field, where it came from (``--max_steps 0``, or
``max_steps 0 (recipe R.yaml, line 3)``) and what is allowed:

* :func:`load_recipe`: the recipe is a readable YAML file holding one mapping of field names;
  malformed YAML names the file, line and column.
* :func:`parse_checked`: recipe keys and flags must be known fields, recipe values must have the
  field's type (``learning_rate: abc``, ``num_generations: 2.5``), and :func:`check_values` runs
  on the parsed values *before* the dataclasses are built (their ``__post_init__`` divides by
  some of them). Any ``ValueError`` / ``TypeError`` the dataclasses still raise becomes a
  one-line :class:`~pasr.errors.PasrError`.
* :func:`check_paths`: output folders (and files) must be writable paths of the right kind,
  input files must exist. Nothing is created.

Parsing writes nothing: ``TrainingArguments.__post_init__`` (transformers 5) creates no folder
(``output_dir`` is made by the trainer, and here by :class:`pasr.run_folder.RunLock`).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pasr.errors import PasrError
from pasr.run_folder import check_output_folder, nearest_existing


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if (not value or any(c.isspace() for c in value)) else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if value != 0 or math.copysign(1, value) > 0 else "0"
    return str(value)


# --- where a value came from ------------------------------------------------------------------


@dataclasses.dataclass
class Sources:
    """Where each field's value came from, so a message can point at it."""

    recipe: str | None = None
    recipe_lines: dict[str, int] = dataclasses.field(default_factory=dict)
    cli: frozenset[str] = frozenset()

    def label(self, name: str, value: Any) -> str:
        if value is None and name not in self.cli and name not in self.recipe_lines:
            return f"{name} (not set)"
        if name in self.cli:
            return f"--{name} {_show(value)}"
        if name in self.recipe_lines:
            return f"{name} {_show(value)} (recipe {self.recipe}, line {self.recipe_lines[name]})"
        if self.recipe is not None:
            return f"{name} {_show(value)} (the default)"
        return f"{name}={_show(value)}"


# --- the recipe file --------------------------------------------------------------------------


def load_recipe(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, int]]:
    """The recipe's mapping and the line of each key; a PasrError naming the file for anything else."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise PasrError(f"recipe {path} is a folder; --config takes a YAML file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PasrError(f"recipe {path}: cannot read it ({err.strerror or err})") from None
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
        data = yaml.safe_load(raw)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(filter(None, [err.context, err.problem]))
        hint = " (YAML indents with spaces, not tabs)" if "\\t" in problem or "\t" in problem else ""
        raise PasrError(f"recipe {path}{where}: not valid YAML: {one_line(problem)}{hint}") from None
    except yaml.YAMLError as err:
        raise PasrError(f"recipe {path}: not valid YAML: {one_line(err)}") from None
    if node is None:
        raise PasrError(f"recipe {path} is empty; a recipe is a YAML mapping of 'field: value' lines")
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        kind = {yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}.get(type(node), "not a mapping")
        raise PasrError(f"recipe {path}: the top level is {kind}; a recipe is a YAML mapping of 'field: value' lines")
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        line = key_node.start_mark.line + 1
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if not isinstance(key, str) or key_node.tag != "tag:yaml.org,2002:str":
            shown = repr(key) if isinstance(key, str) else "a list or mapping"
            raise PasrError(f"recipe {path}, line {line}: the key {shown} is not a field name; "
                            "a recipe is 'field_name: value' lines")
        if key in lines:
            raise PasrError(f"recipe {path}, line {line}: {key} is set twice (also on line {lines[key]}); keep one")
        lines[key] = line
    return data, lines


# --- types of recipe values -------------------------------------------------------------------

_TRUE = {"yes", "true", "t", "y", "1", "on"}
_FALSE = {"no", "false", "f", "n", "0", "off"}


class _WrongType(Exception):
    def __init__(self, expected: str):
        super().__init__(expected)
        self.expected = expected


def is_union(hint: Any) -> bool:
    """Whether ``hint`` is ``X | Y`` or ``Optional[X]``."""
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "empty (null)"
    if is_union(hint):
        args = typing.get_args(hint)
        return " or ".join(dict.fromkeys(_describe(a) for a in args))
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "text"
    if origin is list or hint is list:
        args = typing.get_args(hint)
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` (from YAML) as the field type ``hint`` wants it, or :class:`_WrongType`."""
    if hint is Any or hint is object:
        return value
    if is_union(hint):
        args = typing.get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise _WrongType(_describe(hint))
        members = [a for a in args if a is not type(None)]
        enums = [a for a in members if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and str in members:  # `SchedulerType | str`: the str is the enum's value
            members = [a for a in members if a is not str]
        for member in members:  # a value that already has one of the types stays as it is
            if _has_type(value, member):
                return value
        for member in members:
            try:
                return _coerce(value, member)
            except _WrongType:
                continue
        raise _WrongType(" or ".join(dict.fromkeys(_describe(m) for m in members)))
    origin = typing.get_origin(hint)
    if value is None:
        raise _WrongType(_describe(hint))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _WrongType("true or false")
    if hint is int:
        if isinstance(value, bool):
            raise _WrongType("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    number = float(value)
                except ValueError:
                    number = math.nan
                if number.is_integer():
                    return int(number)
        raise _WrongType("an integer")
    if hint is float:
        if isinstance(value, bool):
            raise _WrongType("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _WrongType("a number")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _WrongType("text")
    if origin is list or hint is list:
        (item,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):  # TRL's parser passes a single string through (`report_to: none`)
            return value
        if not isinstance(value, list):
            raise _WrongType(_describe(hint))
        try:
            return [_coerce(v, item) for v in value]
        except _WrongType:
            raise _WrongType(_describe(hint)) from None
    if origin is dict or hint is dict:
        if isinstance(value, (dict, str)):
            return value
        raise _WrongType("a mapping")
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise _WrongType(_describe(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [m.value for m in hint]
        if isinstance(value, hint) or value in values:
            return value
        raise _WrongType(_describe(hint))
    return value  # a type the recipe cannot spell anyway (e.g. ParallelismConfig): TRL's own checks


def _has_type(value: Any, hint: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or typing.get_origin(hint) is dict:
        return isinstance(value, dict)
    return False


def field_hints(dataclass_types: Iterable[type]) -> dict[str, Any]:
    """Every init field of ``dataclass_types`` with its resolved type."""
    hints: dict[str, Any] = {}
    for dtype in dataclass_types:
        resolved = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if f.init:
                hints[f.name] = resolved.get(f.name, Any)
    return hints


def _unknown(names: Sequence[str], known: Iterable[str], where: str, command: str, prefix: str = "") -> PasrError:
    known = list(known)
    parts = []
    for name in names:
        close = difflib.get_close_matches(name.replace("-", "_"), known, n=1, cutoff=0.75)
        parts.append(f"{prefix}{name} (did you mean {prefix}{close[0]}?)" if close else f"{prefix}{name}")
    noun = "field" if len(names) == 1 else "fields"
    from pasr.train.fields import command_line

    return PasrError(f"{where}: unknown {noun} {', '.join(parts)}; `pasr {command_line(command)} --fields` lists them")


def check_field_names(fields: Iterable[Any], recipe_keys: Mapping[str, int], recipe: str | os.PathLike,
                      args: Sequence[str], *, command: str = "train") -> None:
    """Refuse an unknown recipe key or ``--flag`` from the field catalog alone, before TRL is imported.

    ``fields`` are :class:`pasr.train.fields.FieldInfo` rows (``name``, ``flag``); ``recipe_keys`` map
    each recipe key to its line. A flag is known as argparse would take it: ``--a_b`` or ``--a-b``,
    ``--no_x`` for a bool field, or a prefix of one of those (argparse's abbreviations). The messages
    are those of :func:`parse_checked`, which checks again with the parser itself.
    """
    fields = list(fields)
    names = [f.name for f in fields]
    known = set(names)
    unknown = [k for k in recipe_keys if k not in known and k != "env"]
    if unknown:
        raise _unknown(unknown, names, f"recipe {recipe}, line {recipe_keys[unknown[0]]}", command)
    spellings = set()
    for f in fields:
        forms = [f.name, f"no_{f.name}"] if f.flag else [f.name]
        spellings.update(forms)
        spellings.update(form.replace("_", "-") for form in forms)
    flags = [a[2:].split("=", 1)[0] for a in args if a.startswith("--") and len(a) > 2]
    unknown = [flag for flag in flags
               if flag not in spellings and flag != "config" and not any(s.startswith(flag) for s in spellings)]
    if unknown:
        raise _unknown(unknown, names, "command line", command, prefix="--")


def check_recipe_types(recipe: Mapping[str, Any], hints: Mapping[str, Any], sources: Sources,
                       choices: Mapping[str, Sequence[Any]] | None = None, command: str = "train") -> dict[str, Any]:
    """The recipe's values converted to their fields' types; a PasrError for an unknown key or a wrong type."""
    unknown = [k for k in recipe if k not in hints]
    if unknown:
        line = sources.recipe_lines.get(unknown[0])
        raise _unknown(unknown, hints, f"recipe {sources.recipe}" + (f", line {line}" if line else ""), command)
    converted = {}
    for name, value in recipe.items():
        where = f"recipe {sources.recipe}, line {sources.recipe_lines.get(name, '?')}"
        try:
            converted[name] = _coerce(value, hints[name])
        except _WrongType as wrong:
            shown = repr(value) if isinstance(value, str) else one_line(value if value is not None else "null")
            raise PasrError(f"{where}: {name}: {shown} is not {wrong.expected}") from None
        allowed = (choices or {}).get(name)
        if allowed and isinstance(converted[name], str) and converted[name] not in allowed:
            raise PasrError(f"{where}: {name}: {converted[name]!r} is not one of {', '.join(map(str, allowed))}")
    return converted


# --- value rules ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rule:
    """``field`` must pass ``ok``, described as ``allowed``; ``None`` passes when ``optional``."""

    field: str
    ok: Callable[[Any], bool]
    allowed: str
    optional: bool = False
    when: Callable[[Mapping[str, Any]], bool] | None = None


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _min(low: float, *, optional: bool = False, text: str | None = None):
    return lambda name, **kw: Rule(name, lambda v: _num(v) and v >= low, text or f">= {_show(low)}", optional, **kw)


def _above(low: float, *, optional: bool = False, text: str | None = None):
    return lambda name, **kw: Rule(name, lambda v: _num(v) and v > low, text or f"> {_show(low)}", optional, **kw)


def _within(low: float, high: float, *, optional: bool = False, high_open: bool = False, low_open: bool = False):
    def ok(v):
        return _num(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    text = f"{'>' if low_open else '>='} {_show(low)} and {'<' if high_open else '<='} {_show(high)}"
    return lambda name, **kw: Rule(name, ok, text, optional, **kw)


def _steps_ok(value: Any) -> bool:
    return _num(value) and value > 0 and (value < 1 or float(value).is_integer())


_STEPS_TEXT = "an integer >= 1 (every that many steps), or a fraction in (0, 1) of the total steps"

RULES: tuple[Rule, ...] = (
    # transformers TrainingArguments
    Rule("seed", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32, "an integer in [0, 2^32)"),
    Rule("data_seed", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32,
         "an integer in [0, 2^32)", optional=True),
    Rule("max_steps", lambda v: isinstance(v, int) and (v == -1 or v >= 1),
         "an integer >= 1, or -1 to train for num_train_epochs epochs"),
    _min(1)("per_device_train_batch_size"),
    _min(1)("per_device_eval_batch_size"),
    _min(1)("gradient_accumulation_steps"),
    _min(0)("learning_rate"),
    _min(0)("weight_decay"),
    _within(0, 1, high_open=True)("adam_beta1"),
    _within(0, 1, high_open=True)("adam_beta2"),
    _min(0)("adam_epsilon"),
    _min(0)("max_grad_norm"),
    _min(0, text=">= 0 (steps, or a fraction < 1 of the total steps)")("warmup_steps"),
    Rule("logging_steps", _steps_ok, _STEPS_TEXT),  # also under another strategy: 0 or less never means anything
    Rule("save_steps", _steps_ok, _STEPS_TEXT),
    Rule("eval_steps", _steps_ok, _STEPS_TEXT, optional=True),
    _min(0, optional=True)("save_total_limit"),
    _min(0)("dataloader_num_workers"),
    _min(1, optional=True)("torch_empty_cache_steps"),
    _min(1, optional=True)("eval_accumulation_steps"),
    # TRL GRPOConfig
    _min(2, text=">= 2 (GRPO compares completions within a group)")("num_generations"),
    _min(2, optional=True)("num_generations_eval"),
    _min(1, optional=True)("generation_batch_size"),
    _min(1, optional=True)("steps_per_generation"),
    _min(1)("num_iterations"),
    _min(1)("max_completion_length"),
    _above(0, text="> 0 (logits are divided by it)")("temperature"),
    _within(0, 1, low_open=True)("top_p"),
    _min(0, text=">= 0 (0: no top-k)")("top_k"),
    _within(0, 1, optional=True)("min_p"),
    _above(0)("repetition_penalty"),
    _min(0)("beta"),
    _min(0)("epsilon"),
    _min(0, optional=True)("epsilon_high"),
    _above(0, optional=True)("vllm_server_timeout"),
    _within(0, 1, low_open=True)("vllm_gpu_memory_utilization"),
    _min(1)("vllm_tensor_parallel_size"),
    # TRL SFTConfig
    _min(1, optional=True)("max_length"),
    # TRL ModelConfig
    _min(1)("lora_r"),
    _above(0)("lora_alpha"),
    _within(0, 1, high_open=True)("lora_dropout"),
    # PASR
    _min(0)("zeta"),
    _min(1, optional=True)("baseline_samples"),
    _above(0, text="> 0 seconds")("scoring_timeout"),
    _min(0, text=">= 0 (0: no warm-up)")("warmup_examples", when=lambda v: "num_generations" in v),
    _min(1)("warmup_examples", when=lambda v: "num_generations" not in v and v.get("dataset") == "warmup"),
    _min(0)("warmup_learning_rate"),
    _min(1)("warmup_batch_size"),
    _within(0, 1)("warmup_refine_share"),
    _min(1, optional=True)("train_size"),
    _min(1)("judge_concurrency"),
    _min(1)("judge_max_tokens"),
    _above(0, text="> 0 seconds")("judge_timeout"),
    _min(0)("judge_retries"),
    # STaR
    _min(1)("star_iterations"),
    _min(1)("star_questions"),
    _min(0)("star_fewshot"),
    _min(0)("star_heldout"),
    _min(1)("star_max_new_tokens"),
    _min(1)("star_generation_batch_size"),
    _min(0)("star_temperature"),
)


def _world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def reads_training_questions(*configs: Any) -> bool:
    """Whether ``dataset`` / ``data_file`` of a command name *training questions* (records as
    :func:`pasr.train.data.load_training_records` reads them: GRPO, STaR, PTR, ...) rather than SFT chat examples.

    ``configs``: the command's config classes or instances; one of them says so with a class attribute
    ``training_questions = True`` (:class:`pasr.train.config.PasrGRPOConfig`, a baseline's config).
    """
    return any(getattr(c, "training_questions", False) is True for c in configs)


def check_values(values: Mapping[str, Any], sources: Sources | None = None, *,
                 training_questions: bool | None = None) -> None:
    """Every rule of :data:`RULES` and the relations between fields, on the parsed values of one command.

    ``values`` maps field names to values (all fields of the command's dataclasses). ``training_questions``:
    whether ``dataset`` names training questions or SFT chat examples (:func:`reads_training_questions` of the
    command's config classes); None (a bare mapping) follows from the fields: ``num_generations`` (GRPO) or
    ``star_iterations`` (STaR), else SFT. Raises a one-line PasrError for the first problem.
    """
    sources = sources or Sources()

    def fail(name: str, problem: str) -> PasrError:
        return PasrError(f"{sources.label(name, values.get(name))}: {problem}")

    for rule in RULES:
        if rule.field not in values or (rule.when is not None and not rule.when(values)):
            continue
        value = values[rule.field]
        if value is None and rule.optional:
            continue
        if not rule.ok(value):
            raise fail(rule.field, f"must be {rule.allowed}" + (" (or left unset)" if rule.optional else ""))

    grpo = "num_generations" in values
    star = "star_iterations" in values
    if values.get("max_steps") == -1 and "num_train_epochs" in values:
        epochs = values["num_train_epochs"]
        if not (_num(epochs) and epochs > 0):
            raise fail("num_train_epochs", "must be > 0 when max_steps is -1 (train for that many epochs); "
                                           "or set max_steps >= 1")
    if "report_to" in values:
        _check_report_to(values["report_to"], fail)
    strategy = values.get("eval_strategy")
    if strategy is not None and str(getattr(strategy, "value", strategy)) != "no":
        raise fail("eval_strategy", "must be 'no': this command has no eval set (score models with `pasr eval`)")
    if grpo:
        from pasr.train.config import TRAIN_REFINE_MODES

        if values.get("refine_reward_mode", "comparison") not in TRAIN_REFINE_MODES:
            raise fail("refine_reward_mode", f"must be one of {', '.join(TRAIN_REFINE_MODES)}")
        _check_generation_batch(values, fail)
    if training_questions is None:
        training_questions = grpo or star
    if training_questions:
        _check_training_dataset(values, fail)
    elif "dataset" in values:
        if values["dataset"] not in ("warmup", "file"):
            raise fail("dataset", "must be 'warmup' (built-in worked solutions) or 'file' (with data_file)")
        if values["dataset"] == "file" and not values.get("data_file"):
            raise fail("dataset", "'file' needs data_file (a JSONL file of chat examples)")
    if "synthetic_difficulty" in values and values["synthetic_difficulty"] is not None:
        from pasr.data.synthetic import LEVELS

        if values["synthetic_difficulty"] not in LEVELS:
            raise fail("synthetic_difficulty", f"must be one of {', '.join(map(str, LEVELS))} (or left unset)")
    if "synthetic_family" in values:
        from pasr.data.synthetic import FAMILIES

        if values["synthetic_family"] not in FAMILIES:
            raise fail("synthetic_family", f"must be one of {', '.join(FAMILIES)}")
        if values["synthetic_family"] != "arith" and values.get("synthetic_difficulty") is not None:
            raise fail("synthetic_difficulty", f"applies to synthetic_family 'arith' only; leave it unset for "
                                               f"{values['synthetic_family']!r}")
    if star and values.get("star_backend") not in (None, "transformers", "vllm"):
        raise fail("star_backend", "must be 'transformers' or 'vllm'")
    if bool(values.get("judge_url")) != bool(values.get("judge_model")):
        name = "judge_url" if values.get("judge_url") else "judge_model"
        raise fail(name, "judge_url and judge_model go together: set both or neither")
    if values.get("judge_agreement") and not values.get("judge_url"):
        raise fail("judge_agreement", "needs a judge: set judge_url and judge_model")


def _check_report_to(value: Any, fail: Callable[[str, str], PasrError]) -> None:
    """``report_to``: 'none', 'all', or integrations transformers knows (one name, or a list of names)."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    if value is None:
        return
    known = ("none", "all", *sorted(INTEGRATION_TO_CALLBACK))
    names = [value] if isinstance(value, str) or value is None else list(value) if isinstance(value, list) else [value]
    bad = [n for n in names if not (isinstance(n, str) and n in known)]
    if bad:
        raise fail("report_to", f"{bad[0]!r} is not a logger transformers knows; use {', '.join(known)}")


def _check_generation_batch(values: Mapping[str, Any], fail: Callable[[str, str], PasrError]) -> None:
    """TRL's rule, said in the options the user set: the generation batch holds whole groups."""
    size, accum = values.get("per_device_train_batch_size"), values.get("gradient_accumulation_steps")
    group = values.get("num_generations")
    gen_batch, gen_steps = values.get("generation_batch_size"), values.get("steps_per_generation")
    if not all(isinstance(v, int) for v in (size, accum, group)):
        return
    procs = _world_size()
    across = f" x {procs} processes" if procs > 1 else ""
    if gen_batch is not None and gen_steps is not None:
        raise fail("steps_per_generation", "set generation_batch_size or steps_per_generation, not both")
    if gen_batch is not None:
        if gen_batch % (size * procs):
            raise fail("generation_batch_size", f"must be divisible by per_device_train_batch_size {size}{across}")
        total, how = gen_batch, f"generation_batch_size {gen_batch}"
    else:
        steps = gen_steps if gen_steps is not None else accum
        which = "steps_per_generation" if gen_steps is not None else "gradient_accumulation_steps"
        total = size * procs * steps
        how = f"per_device_train_batch_size {size}{across} x {which} {steps} = {total}"
    if total % group:
        raise fail("num_generations", f"the generation batch ({how}) must be divisible by num_generations "
                                      f"{group}, so that every question's group of completions is whole")


def _check_training_dataset(values: Mapping[str, Any], fail: Callable[[str, str], PasrError]) -> None:
    """``pasr train`` / ``pasr star`` datasets (as :func:`pasr.train.data.load_training_records` reads them)."""
    from pasr.data.benchmarks import BENCHMARKS

    name = values.get("dataset")
    if name is None:
        return
    if name not in ("synthetic", "wizardlm", "file") and name not in BENCHMARKS:
        others = ", ".join(sorted(set(BENCHMARKS) - {"synthetic", "wizardlm", "file"}))
        raise fail("dataset", f"must be 'synthetic', 'wizardlm', 'file' (with data_file) or a benchmark: {others}")
    if name == "file" and not values.get("data_file"):
        raise fail("dataset", "'file' needs data_file (a JSON/JSONL file of training records)")
    if name in BENCHMARKS and not values.get("data_file"):
        from pasr.data.benchmarks import training_split

        try:
            training_split(name)
        except PasrError as err:
            raise fail("dataset", str(err).split(": ", 1)[1]) from None


# --- paths ------------------------------------------------------------------------------------


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a Path, or a PasrError naming ``option`` when no file can be written there. Creates nothing."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise PasrError(f"{option} {path}: is a folder; give a file path")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise PasrError(f"{option} {path}: is not writable by this user; choose another path")
        return path
    base = nearest_existing(path.parent)
    if not base.is_dir():
        raise PasrError(f"{option} {path}: {base} is a file, so no folder can be made there; choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise PasrError(f"{option} {path}: cannot be created: {base} is not writable by this user; "
                        "choose another path")
    return path


def check_input_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a Path, or a PasrError naming ``option`` when it is not a readable file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise PasrError(f"{option} {path}: no such file")
    if path.is_dir():
        raise PasrError(f"{option} {path}: is a folder; give a file")
    if not os.access(path, os.R_OK):
        raise PasrError(f"{option} {path}: is not readable by this user")
    return path


def check_paths(config: Any) -> None:
    """The paths of a parsed train / sft / star config: output folders writable, input files present; then, every
    check passed, the notes of what parsing changed (:func:`decline_emulated_bf16`) on stderr."""
    check_output_folder("trainer_output" if config.output_dir is None else config.output_dir, "output_dir")
    names = [f.name for f in dataclasses.fields(config)] if dataclasses.is_dataclass(config) else ["data_file"]
    for name in names:  # data_file, star_fewshot_file, ptr_heldout_file, ...: input files
        value = getattr(config, name, None)
        if name.endswith("_file") and value:
            check_input_file(value, name)
    if reads_training_questions(config) and getattr(config, "dataset", None) == "file" and not getattr(config, "data_task", None):
        raise PasrError(f"data_task is not set: dataset 'file' (data_file {config.data_file}) needs the answer "
                        "family of its records (--data_task math, gsm8k, choice, open, ...)")
    rollout_log = getattr(config, "rollout_log", None)
    if rollout_log:
        check_output_file(rollout_log, "rollout_log")
    cache = getattr(config, "judge_cache_dir", None)
    if cache and getattr(config, "judge_url", None):
        check_output_folder(cache, "judge_cache_dir")
    for note in _notes:
        print(note, file=sys.stderr)
    _notes.clear()


# --- parsing ----------------------------------------------------------------------------------

_ARGPARSE_TYPE = re.compile(r"^argument (--[\w-]+)(?:/--[\w-]+)*: invalid (\w+) value: (.*)$", re.DOTALL)
_ARGPARSE_ARG = re.compile(r"^argument (--[\w-]+)(?:/--[\w-]+)*: (.*)$", re.DOTALL)
_TYPE_WORDS = {"int": "an integer", "float": "a number"}


_TRUTHY = re.compile(r"^argument (--[\w-]+)(?:/--[\w-]+)*: Truthy value expected: got (.*?) but expected one of (.*?) \(")
_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _argparse_message(message: str) -> str:
    match = _ARGPARSE_TYPE.match(message)
    if match:
        option, kind, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return f"{option} {value}: not {_TYPE_WORDS.get(kind, kind)}"
    match = _TRUTHY.match(message)
    if match:
        option, value, allowed = match.groups()
        return f"{option} {value}: not true or false ({allowed})"
    match = _ARGPARSE_ARG.match(message)
    if match:
        return f"{match.group(1)}: {match.group(2)}"
    return message


def _make_parser(dataclass_types: Sequence[type]):
    from trl import TrlParser

    class Parser(TrlParser):
        def error(self, message):  # argparse would print the usage of ~300 options and exit
            raise PasrError(one_line(_argparse_message(message)))

        def exit(self, status=0, message=None):  # `-h`: argparse prints the help itself
            if status:
                raise PasrError(one_line(message or "bad options"))
            raise SystemExit(status)

    return Parser(list(dataclass_types))


_UNSET = object()


def parse_checked(dataclass_types: Sequence[type], recipe: str | os.PathLike, args: Sequence[str],
                  *, command: str = "train", loaded: tuple[dict[str, Any], dict[str, int]] | None = None) -> tuple:
    """The dataclasses from ``recipe`` and ``args`` (``--field value`` flags), every value checked first.

    ``loaded``: the recipe as :func:`load_recipe` returned it, when the caller has read it already.
    """
    data, lines = loaded or load_recipe(recipe)
    sources = Sources(recipe=str(recipe), recipe_lines=lines)
    env = data.pop("env", None)
    if env is not None and not (isinstance(env, dict) and all(isinstance(k, str) for k in env)):
        raise PasrError(f"recipe {recipe}, line {lines.get('env', '?')}: env must be a mapping of VARIABLE: value")
    parser = _make_parser(dataclass_types)
    hints = field_hints(dataclass_types)
    choices = {a.dest: list(a.choices) for a in parser._actions if a.choices}
    data = check_recipe_types(data, hints, sources, choices, command)
    parser.set_defaults_with_config(**data)

    args = _join_negative_numbers(args)
    given = _cli_fields(parser, args)
    sources.cli = frozenset(given)
    namespace, remaining = parser.parse_known_args(list(args))
    if remaining:
        flags = [a for a in remaining if a.startswith("-")] or remaining
        if "--config" in flags:
            raise PasrError("--config given twice; give one recipe and override its fields with --field value")
        names = [a.split("=", 1)[0].lstrip("-") for a in flags]
        if not [a for a in remaining if a.startswith("-")]:
            raise PasrError(f"unexpected argument(s) {' '.join(remaining)}; options are --field value pairs")
        raise _unknown(names, hints, "command line", command, prefix="--")
    values = vars(namespace)
    _restore_defaults(values, dataclass_types, hints)
    check_values(values, sources, training_questions=reads_training_questions(*dataclass_types))
    _notes.clear()
    decline_emulated_bf16(values, sources)

    for key, value in (env or {}).items():
        os.environ[key] = str(value)
    outputs = []
    for dtype in dataclass_types:
        keys = {f.name for f in dataclasses.fields(dtype) if f.init}
        inputs = {k: v for k, v in values.items() if k in keys}
        try:
            outputs.append(dtype(**inputs))
        except PasrError as err:
            raise PasrError(where_from(one_line(err), values, sources)) from None
        except (ValueError, TypeError, ArithmeticError, KeyError, NotImplementedError) as err:
            raise PasrError(f"invalid options: {one_line(err)}") from None
    return tuple(outputs)


def decline_emulated_bf16(values: dict[str, Any], sources: Sources) -> None:
    """``bf16: true`` (mixed precision) becomes false where training runs on a CPU without native bf16
    (:func:`pasr.models.emulated_bf16`: there bf16 autocast made a step 23x slower than fp32), with a one-line
    note naming where the value came from (said by :func:`check_paths`, the commands' last check before work).
    On a GPU, or a CPU with avx512_bf16 or AMX, it stays."""
    if not values.get("bf16"):
        return
    import torch

    from pasr.models import EMULATED_BF16, emulated_bf16

    cuda = torch.cuda.is_available() and not values.get("use_cpu")
    if not emulated_bf16("cuda" if cuda else "cpu"):
        return
    where = "command line" if "bf16" in sources.cli else (
        f"recipe {sources.recipe}, line {sources.recipe_lines['bf16']}" if "bf16" in sources.recipe_lines
        else "default")
    values["bf16"] = False
    _notes.append(f"note: {where}: bf16 true -> false: " + EMULATED_BF16.format(
        what="a training step", slower="about 23x slower", instead="training in fp32"))


_notes: list[str] = []
"""Notes on what the checks changed, said on stderr by :func:`check_paths` once every check has passed (a refused
command says only its one-line error)."""


def where_from(message: str, values: Mapping[str, Any], sources: Sources) -> str:
    """A config class's own refusal (``score_alpha must be ...``) with where its field's value came from: the
    recipe file and line, or the command line, when the message starts with a field name and does not say so."""
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", message)
    name = match.group(1) if match else None
    if name not in values or name not in sources.cli | set(sources.recipe_lines):
        return message
    where = "command line" if name in sources.cli else f"recipe {sources.recipe}, line {sources.recipe_lines[name]}"
    return message if where in message else f"{where}: {message}"


def _restore_defaults(values: dict[str, Any], dataclass_types: Sequence[type], hints: Mapping[str, Any]) -> None:
    """Put back the dataclass default where the parser lost it.

    transformers' HfArgumentParser gives a ``str | list[str]`` field with a plain default (PASR's
    ``report_to = "none"``) no parser default, so a recipe without that key got ``None`` and
    training failed once started ("None is not supported"). Only fields that cannot be None are touched.
    """
    for dtype in dataclass_types:
        for f in dataclasses.fields(dtype):
            if not f.init or values.get(f.name, 0) is not None:
                continue
            hint = hints.get(f.name)
            if hint is None or (is_union(hint) and type(None) in typing.get_args(hint)):
                continue
            if f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()


def _join_negative_numbers(args: Sequence[str]) -> list[str]:
    """``--learning_rate -1e-5`` as ``--learning_rate=-1e-5``: argparse reads ``-1e-5`` as an option name."""
    out: list[str] = []
    for arg in args:
        if _NUMBER.match(arg) and out and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _cli_fields(parser: Any, args: Sequence[str]) -> set[str]:
    """The fields the command line itself sets (however spelt: ``--a-b``, ``--no_x``, abbreviated)."""
    import argparse

    blank = argparse.Namespace(**{a.dest: _UNSET for a in parser._actions if a.dest != "help"})
    try:
        namespace, _ = parser.parse_known_args(list(args), namespace=blank)
    except PasrError:
        return set()
    return {k for k, v in vars(namespace).items() if v is not _UNSET}


__all__ = [
    "RULES", "Rule", "Sources", "check_field_names", "check_input_file", "check_output_file", "check_paths",
    "check_recipe_types",
    "check_values", "field_hints", "load_recipe", "one_line", "parse_checked", "reads_training_questions",
]
