"""The config fields of ``pasr train``, ``pasr sft`` and every ``pasr baseline NAME``: name, type, default, help, group.

The configs are TRL dataclasses, and importing TRL pulls in torch and transformers: about 6 s on a
warm 2-core machine and over 30 s on a cold or busy one. ``--fields`` and the check of field names
(a typo such as ``--max_stpes``) need only the names, so they read a catalog packaged with pasr,
``fields.json``, built from the very same dataclasses by ``python -m pasr.train.fields --write``
and held equal to them by ``tests/test_fields.py``. Where the installed trl or transformers is not the
version the catalog was built with, the catalog is built from the dataclasses instead (slow, always right).

Groups follow the class that defines each field, PASR's own first: the PASR reward / baseline /
warm-up fields, training data, the LLM judge, then TRL's ``ModelConfig``, TRL's trainer config and
transformers' ``TrainingArguments``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
import sys
import textwrap
import typing
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pasr.baselines import registry
from pasr.train.checks import is_union

COMMANDS = ("train", "sft", *registry.names())
"""``train``, ``sft`` and each registered baseline's name (``pasr baseline NAME``)."""
CATALOG = Path(__file__).with_name("fields.json")
#: The packages whose dataclasses the catalog describes; a catalog built with other versions is not used.
PACKAGES = ("trl", "transformers")

#: Group titles by defining class; other classes get "ClassName (package)".
GROUP_TITLES = {
    "PasrGRPOConfig": "PASR: reward, standard-sample baseline, warm-up, paper defaults",
    "PasrSFTConfig": "PASR supervised fine-tuning",
    "DataArguments": "Training data",
    "JudgeArguments": "LLM judge (OpenAI-compatible API)",
    "ModelConfig": "Model and LoRA (TRL ModelConfig)",
    "GRPOConfig": "GRPO (TRL GRPOConfig)",
    "SFTConfig": "SFT (TRL SFTConfig)",
    "_BaseConfig": "Settings TRL's trainers share (TRL _BaseConfig)",
    "TrainingArguments": "Trainer (transformers TrainingArguments)",
}


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config field as a recipe key and a ``--name value`` flag.

    ``type`` and ``default`` are display strings; ``flag`` is True for a bool field (``--name``
    alone sets it, and ``--no_name`` clears one whose default is True).
    """

    name: str
    type: str
    default: str
    help: str
    group: str
    flag: bool = False


def config_types(command: str) -> tuple[type, ...]:
    """The dataclasses ``pasr COMMAND`` parses (imports TRL: slow); a baseline's name gives its registered config."""
    from pasr.train.config import ModelConfig, PasrGRPOConfig, PasrSFTConfig

    if command == "train":
        return (PasrGRPOConfig, ModelConfig)
    if command == "sft":
        return (PasrSFTConfig, ModelConfig)
    if command in registry.names():
        return (registry.get(command).config_class(), ModelConfig)
    raise ValueError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")


def command_line(command: str) -> str:
    """How a user types ``command`` after ``pasr``: ``train``, ``sft``, ``baseline star``."""
    return f"baseline {command}" if command in registry.names() else command


def group_title(owner: type) -> str:
    """The ``--fields`` group of the fields ``owner`` declares (a baseline's config: "<title> baseline")."""
    for baseline in registry.BASELINES:
        module = sys.modules.get(owner.__module__) if owner.__module__ == baseline.module else None
        if module is not None and getattr(module, baseline.config, None) is owner:  # `Config = PtrConfig` too
            return f"{baseline.heading} baseline"
    return GROUP_TITLES.get(owner.__name__, f"{owner.__name__} ({owner.__module__.split('.')[0]})")


def build(dataclass_types: Sequence[type]) -> list[FieldInfo]:
    """Every init field of ``dataclass_types`` (first type first, a name once), in groups, PASR's first."""
    seen: set[str] = set()
    rows: list[tuple[int, int, int, FieldInfo]] = []
    group_order: dict[str, int] = {}
    for dtype in dataclass_types:
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not f.init or f.name in seen:
                continue
            seen.add(f.name)
            owner = _owner(dtype, f.name)
            group = group_title(owner)
            group_order.setdefault(group, len(group_order))
            hint = hints.get(f.name, Any)
            info = FieldInfo(
                name=f.name, type=_type_text(hint), default=_default_text(f), help=_help_text(f), group=group,
                flag=_is_bool(hint),
            )
            declared = list(owner.__dict__.get("__annotations__", {}))
            position = declared.index(f.name) if f.name in declared else len(declared)
            rows.append((_rank(owner, dataclass_types[0]), group_order[group], position, info))
    rows.sort(key=lambda row: row[:3])  # inside a group, fields in the order their class declares them
    return [row[3] for row in rows]


def installed_versions() -> dict[str, str]:
    """``{package: version}`` for :data:`PACKAGES`, from package metadata (no import)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def catalog(command: str, path: Path = CATALOG) -> list[FieldInfo]:
    """The fields of ``pasr COMMAND``: the packaged catalog when it matches the installed versions, else built live."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("versions") == installed_versions() and command in data.get("commands", {}):
        return [FieldInfo(**row) for row in data["commands"][command]]
    return build(config_types(command))


def catalog_data() -> dict[str, Any]:
    """What ``fields.json`` holds: the installed versions and, per command, its fields built live."""
    return {
        "versions": installed_versions(),
        "commands": {command: [dataclasses.asdict(f) for f in build(config_types(command))] for command in COMMANDS},
    }


def write_catalog(path: Path = CATALOG) -> Path:
    """Rebuild ``fields.json`` from the dataclasses (run after changing a config field or upgrading TRL)."""
    path.write_text(json.dumps(catalog_data(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def render(command: str, fields: Sequence[FieldInfo], terms: Sequence[str] = (), width: int | None = None) -> str:
    """The ``--fields`` listing: a header, then each group with ``--name TYPE = DEFAULT`` and the help below.

    ``terms`` keep only fields where every term is part of the name or starts a word of the help
    (case-insensitive: ``lora`` finds ``lora_r`` and "LoRA dropout", not "exploration").
    """
    import re

    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    width = max(width, 40)
    wanted = [(t.lower(), re.compile(rf"\b{re.escape(t)}", re.IGNORECASE)) for t in terms]
    shown = [f for f in fields if all(t in f.name.lower() or word.search(f.help) for t, word in wanted)]
    groups: dict[str, list[FieldInfo]] = {}
    for f in shown:
        groups.setdefault(f.group, []).append(f)
    match = f" matching {' '.join(terms)!r}" if terms else ""
    lines = textwrap.wrap(
        f"pasr {command_line(command)}: {len(shown)} fields{match} in {len(groups)} groups. Set one in a recipe "
        f"(name: value) or on the command line (--name value); `pasr {command_line(command)} --fields WORD` lists "
        "the fields about WORD.",
        width=width,
    )
    wrap = textwrap.TextWrapper(width=width, initial_indent="      ", subsequent_indent="      ")
    for group, members in groups.items():
        lines += ["", f"{group} ({len(members)})"]
        for f in members:
            head = f"  --{f.name}  {f.type} = {f.default}"
            if len(head) <= width:
                lines.append(head)
            else:  # a long list of choices (optim, lr_scheduler_type) goes below, wrapped
                lines.append(f"  --{f.name}  = {f.default}")
                lines += wrap.wrap(f"one of: {f.type}")
            if f.help:
                lines += wrap.wrap(f.help)
    if not shown:
        lines.append(f"no field{match}")
    return "\n".join(lines)


# --- how each field is shown ------------------------------------------------------------------


def _owner(dtype: type, name: str) -> type:
    """The most derived class in ``dtype``'s MRO that declares field ``name`` (its current definition)."""
    for cls in dtype.__mro__:
        if name in cls.__dict__.get("__annotations__", {}):
            return cls
    return dtype


def _rank(owner: type, command_type: type) -> int:
    """The command's own class first, then pasr's other classes, TRL's ModelConfig, TRL, transformers."""
    module = owner.__module__
    if owner is command_type:
        return 0
    if module.startswith("pasr"):
        return 1
    if owner.__name__ == "ModelConfig":
        return 2
    return 3 if module.startswith("trl") else 4


def _is_bool(hint: Any) -> bool:
    if hint is bool:
        return True
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return is_union(hint) and len(args) == 1 and args[0] is bool


def _type_text(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if is_union(hint):
        return " | ".join(_type_text(a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(hint))
    if origin is not None:
        args = ", ".join(_type_text(a) for a in typing.get_args(hint))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]" if args else getattr(origin, "__name__", str(origin))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " | ".join(str(m.value) for m in hint)
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        try:
            return json.dumps(value, ensure_ascii=False)
        except TypeError:
            pass
    return str(value)


def _help_text(f: dataclasses.Field) -> str:
    return " ".join(str(f.metadata.get("help", "")).split())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pasr.train.fields --write``: rebuild the packaged catalog; ``--check``: rc 1 if it is stale."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {write_catalog()}")
        return 0
    if args.check:
        stale = json.loads(CATALOG.read_text(encoding="utf-8")) != catalog_data()
        print(f"{CATALOG} is {'stale: run python -m pasr.train.fields --write' if stale else 'current'}")
        return int(stale)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
