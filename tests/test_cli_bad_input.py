"""Bad input to every command ends before any work with one line naming the option or file (issue 11, items 5, 8).

Most cases call :func:`pasr.train.command.parse_config` and the checks directly (fast); a few run the
real ``pasr`` script to see the whole path: exit code 2, one ``error:`` line on stderr, no traceback,
no output folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pasr.baselines.command import DEFAULT_STAR_RECIPE
from pasr.baselines.registry import names
from pasr.baselines.star import StarConfig
from pasr.errors import PasrError
from pasr.train.checks import check_output_file, check_paths, check_values, load_recipe
from pasr.train.command import DEFAULT_SFT_RECIPE, DEFAULT_TRAIN_RECIPE, RECIPES, parse_config
from pasr.train.config import ModelConfig, PasrGRPOConfig, PasrSFTConfig

KINDS = {
    "train": (PasrGRPOConfig, DEFAULT_TRAIN_RECIPE),
    "sft": (PasrSFTConfig, DEFAULT_SFT_RECIPE),
    "star": (StarConfig, DEFAULT_STAR_RECIPE),
}
PASR = Path(sys.executable).parent / "pasr"
FIXTURES = Path(__file__).parent / "fixtures"


def parse(kind: str, args: list[str]):
    config_type, recipe = KINDS[kind]
    return parse_config(kind, args, recipe)


def refused(kind: str, args: list[str], *needles: str) -> str:
    with pytest.raises(PasrError) as info:
        parse(kind, args)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message, message
    for needle in needles:
        assert needle in message, message
    return message


def recipe(tmp_path: Path, text: str, name: str = "recipe.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- malformed recipes ------------------------------------------------------------------------

MALFORMED = {
    "bad indentation": ("max_steps: 1\n  learning_rate: 1.0e-5\n", "line 2"),
    "tab indentation": ("max_steps: 1\n\tlearning_rate: 1.0e-5\n", "line 2"),
    "tab inside a mapping": ("use_cpu: true\nbeta:\n\t- 1\n", "line 3"),
    "unclosed double quote": ('max_steps: 1\nsystem_prompt: "unclosed\n', "line 3"),
    "unclosed single quote": ("system_prompt: 'unclosed\nmax_steps: 1\n", "line 3"),
    "unclosed bracket": ("report_to: [none, wandb\nmax_steps: 1\n", "line"),
    "unclosed brace": ("model_init_kwargs: {a: 1\n", "line"),
    "mapping value in a scalar": ("max_steps: 1: 2\n", "line 1"),
    "two documents": ("max_steps: 1\n---\nmax_steps: 2\n", "line 2"),
    "key without colon after mapping": ("max_steps: 1\nlearning_rate\n", "line 3"),
    "top-level list": ("- max_steps: 1\n- learning_rate: 1.0e-5\n", "list"),
    "top-level scalar": ("just some text\n", "single value"),
    "top-level number": ("42\n", "single value"),
    "empty file": ("", "empty"),
    "only comments": ("# nothing here\n# at all\n", "empty"),
    "only whitespace": ("\n\n   \n", "empty"),
    "duplicate key": ("max_steps: 1\nuse_cpu: true\nmax_steps: 2\n", "line 3"),
    "numeric key": ("1: 2\n", "line 1"),
    "list key": ("[a, b]: 2\n", "line 1"),
    "null key": ("~: 3\n", "line 1"),
    "env not a mapping": ("env: 3\nmax_steps: 1\n", "env"),
    "env a list": ("env:\n  - A=1\n", "env"),
}


@pytest.mark.parametrize("kind", ["train", "sft", "star"])
@pytest.mark.parametrize("case", list(MALFORMED), ids=str)
def test_malformed_recipe_names_the_file(tmp_path, kind, case):
    text, needle = MALFORMED[case]
    path = recipe(tmp_path, text, name="bad-recipe.yaml")
    message = refused(kind, ["--config", path], "bad-recipe.yaml", needle)
    assert "recipe" in message


def test_tab_message_says_why(tmp_path):
    refused("train", ["--config", recipe(tmp_path, "max_steps: 1\n\tbeta: 0.1\n")], "tabs", "line 2, column 1")


def test_config_path_problems(tmp_path):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    refused("train", ["--config", str(folder)], str(folder), "folder")
    refused("train", ["--config", str(tmp_path / "missing.yaml")], "missing.yaml", "not found")
    refused("train", ["--config"], "--config")
    refused("train", ["--config", "--max_steps", "1"], "--config")
    refused("train", ["--config", "cpu-default.yaml", "--config", "cpu-star.yaml"], "--config", "twice")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x00garbage\x00\x81")
    refused("train", ["--config", str(binary)], "binary.yaml")


# --- unknown fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("key, needle", [
    ("no_such_key: 3", "no_such_key"),
    ("max-steps: 3", "did you mean max_steps"),
    ("maxsteps: 3", "maxsteps"),
    ("learning-rate: 1.0e-5", "did you mean learning_rate"),
    ("config: other.yaml", "config"),
    ("star_iterations: 2", "star_iterations"),  # a STaR field in a GRPO recipe
    ("Max_Steps: 3", "Max_Steps"),
])
def test_unknown_recipe_key(tmp_path, key, needle):
    message = refused("train", ["--config", recipe(tmp_path, f"use_cpu: true\n{key}\n")], needle, "recipe")
    assert "line 2" in message


@pytest.mark.parametrize("kind, args, needle", [
    ("train", ["--no_such_flag", "3"], "--no_such_flag"),
    ("train", ["--max-stepz", "3"], "did you mean --max_steps"),
    ("train", ["--warmup_exmples", "3"], "--warmup_exmples"),
    ("train", ["--star_iterations", "2"], "--star_iterations"),
    ("sft", ["--num_generations", "4"], "--num_generations"),
    ("sft", ["--baseline_samples", "4"], "--baseline_samples"),
    ("star", ["--zeta", "0.1"], "--zeta"),
    ("train", ["stray"], "stray"),
    ("train", ["--max_steps", "2", "3"], "3"),
])
def test_unknown_or_stray_command_line_option(kind, args, needle):
    refused(kind, args, needle)


# --- values of the wrong type -----------------------------------------------------------------

WRONG_TYPES = [
    ("learning_rate: abc", "learning_rate", "a number"),
    ("learning_rate: [1, 2]", "learning_rate", "a number"),
    ("learning_rate: true", "learning_rate", "a number"),
    ("learning_rate: {a: 1}", "learning_rate", "a number"),
    ("learning_rate: null", "learning_rate", "a number"),
    ('max_steps: "ten"', "max_steps", "an integer"),
    ("max_steps: [1, 2]", "max_steps", "an integer"),
    ("max_steps: 1.5", "max_steps", "an integer"),
    ("max_steps: null", "max_steps", "an integer"),
    ("max_steps: yes", "max_steps", "an integer"),
    ("num_generations: 2.5", "num_generations", "an integer"),
    ("per_device_train_batch_size: eight", "per_device_train_batch_size", "an integer"),
    ("per_device_train_batch_size: {a: 1}", "per_device_train_batch_size", "an integer"),
    ("gradient_accumulation_steps: 1.5", "gradient_accumulation_steps", "an integer"),
    ("seed: abc", "seed", "an integer"),
    ("train_size: lots", "train_size", "an integer"),
    ("use_peft: maybe", "use_peft", "true or false"),
    ("use_peft: 3", "use_peft", "true or false"),
    ("use_cpu: [true]", "use_cpu", "true or false"),
    ("bf16: 2", "bf16", "true or false"),
    ("lazy_baseline: sometimes", "lazy_baseline", "true or false"),
    ("temperature: hot", "temperature", "a number"),
    ("beta: [0.1]", "beta", "a number"),
    ("zeta: low", "zeta", "a number"),
    ("warmup_refine_share: half", "warmup_refine_share", "a number"),
    ("judge_timeout: fast", "judge_timeout", "a number"),
    ("output_dir: {a: 1}", "output_dir", "text"),
    ("output_dir: [a, b]", "output_dir", "text"),
    ("system_prompt: [pasr]", "system_prompt", "text"),
    ("refine_reward_mode: [comparison]", "refine_reward_mode", "text"),
    ("model_name_or_path: {a: 1}", "model_name_or_path", "text"),
    ("lora_r: sixteen", "lora_r", "an integer"),
    ("lora_dropout: none", "lora_dropout", "a number"),
    ("lr_scheduler_type: sideways", "lr_scheduler_type", "one of"),
    ("reward_weights: 1.0", "reward_weights", "a list"),
    ("reward_weights: [a, b]", "reward_weights", "a list"),
]


@pytest.mark.parametrize("line, field, expected", WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_wrong_type_in_recipe_names_field_and_type(tmp_path, line, field, expected):
    path = recipe(tmp_path, f"logging_first_step: false\n{line}\n", name="typed.yaml")
    message = refused("train", ["--config", path], "typed.yaml", "line 2", field, expected)
    assert message.index(field) < message.index(expected)


@pytest.mark.parametrize("kind, line, field", [
    ("sft", "max_length: long", "max_length"),
    ("sft", "warmup_examples: 2.5", "warmup_examples"),
    ("sft", "packing: perhaps", "packing"),
    ("star", "star_iterations: two", "star_iterations"),
    ("star", "star_temperature: [0]", "star_temperature"),
    ("star", "star_rationalize: 5", "star_rationalize"),
])
def test_wrong_type_in_sft_and_star_recipes(tmp_path, kind, line, field):
    refused(kind, ["--config", recipe(tmp_path, f"use_cpu: true\n{line}\n")], field, "line 2")


@pytest.mark.parametrize("kind, args, field", [
    ("train", ["--learning_rate", "abc"], "--learning_rate"),
    ("train", ["--max_steps", "ten"], "--max_steps"),
    ("train", ["--max_steps", "1.5"], "--max_steps"),
    ("train", ["--num_generations", "2.5"], "--num_generations"),
    ("train", ["--use_peft", "maybe"], "--use_peft"),
    ("train", ["--per_device_train_batch_size", "x"], "--per_device_train_batch_size"),
    ("train", ["--temperature", "hot"], "--temperature"),
    ("train", ["--max_steps"], "--max_steps"),
    ("train", ["--lr_scheduler_type", "sideways"], "--lr_scheduler_type"),
    ("train", ["--bf16", "2"], "--bf16"),
    ("sft", ["--max_length", "long"], "--max_length"),
    ("star", ["--star_iterations", "two"], "--star_iterations"),
])
def test_wrong_type_on_command_line(kind, args, field):
    message = refused(kind, args, field)
    assert "usage:" not in message


# --- values out of range ----------------------------------------------------------------------

RANGE = [
    ("train", "max_steps", "0"), ("train", "max_steps", "-2"), ("train", "max_steps", "-100"),
    ("train", "per_device_train_batch_size", "0"), ("train", "per_device_train_batch_size", "-1"),
    ("train", "per_device_eval_batch_size", "0"),
    ("train", "gradient_accumulation_steps", "0"), ("train", "gradient_accumulation_steps", "-2"),
    ("train", "num_generations", "0"), ("train", "num_generations", "1"), ("train", "num_generations", "-4"),
    ("train", "generation_batch_size", "0"), ("train", "generation_batch_size", "-8"),
    ("train", "steps_per_generation", "0"), ("train", "steps_per_generation", "-1"),
    ("train", "num_iterations", "0"), ("train", "num_iterations", "-1"),
    ("train", "logging_steps", "0"), ("train", "logging_steps", "-1"), ("train", "logging_steps", "2.5"),
    ("train", "save_steps", "0"), ("train", "save_steps", "-5"), ("train", "save_steps", "1.5"),
    ("train", "eval_steps", "0"), ("train", "eval_steps", "-1"),
    ("train", "max_completion_length", "0"), ("train", "max_completion_length", "-1"),
    ("train", "baseline_samples", "0"), ("train", "baseline_samples", "-1"),
    ("train", "warmup_examples", "-1"),
    ("train", "warmup_batch_size", "0"), ("train", "warmup_batch_size", "-8"),
    ("train", "warmup_learning_rate", "-0.1"),
    ("train", "warmup_refine_share", "2"), ("train", "warmup_refine_share", "-0.5"),
    ("train", "warmup_refine_share", "1.01"),
    ("train", "judge_concurrency", "0"), ("train", "judge_concurrency", "-3"),
    ("train", "judge_timeout", "0"), ("train", "judge_timeout", "-1"),
    ("train", "judge_retries", "-1"),
    ("train", "scoring_timeout", "0"), ("train", "scoring_timeout", "-2"),
    ("train", "train_size", "0"), ("train", "train_size", "-10"),
    ("train", "learning_rate", "-1e-5"), ("train", "learning_rate", "-0.001"),
    ("train", "temperature", "-0.5"), ("train", "temperature", "0"),
    ("train", "zeta", "-1"), ("train", "beta", "-0.1"), ("train", "epsilon", "-0.2"),
    ("train", "top_p", "0"), ("train", "top_p", "1.5"), ("train", "top_k", "-1"),
    ("train", "repetition_penalty", "0"),
    ("train", "weight_decay", "-0.1"), ("train", "adam_beta1", "1"), ("train", "adam_beta2", "-0.1"),
    ("train", "max_grad_norm", "-1"), ("train", "warmup_steps", "-1"),
    ("train", "lora_r", "0"), ("train", "lora_dropout", "1.5"),
    ("train", "synthetic_difficulty", "0"), ("train", "synthetic_difficulty", "9"),
    ("train", "refine_reward_mode", "sometimes"),
    ("train", "dataset", "no_such_dataset"),
    ("train", "dataloader_num_workers", "-1"),
    ("sft", "max_steps", "0"), ("sft", "max_steps", "-3"),
    ("sft", "per_device_train_batch_size", "0"), ("sft", "gradient_accumulation_steps", "0"),
    ("sft", "learning_rate", "-1"), ("sft", "logging_steps", "0"), ("sft", "save_steps", "0"),
    ("sft", "warmup_examples", "0"), ("sft", "warmup_examples", "-5"),
    ("sft", "warmup_refine_share", "1.5"), ("sft", "max_length", "0"),
    ("sft", "dataset", "no_such_dataset"),
    ("star", "max_steps", "0"), ("star", "per_device_train_batch_size", "0"),
    ("star", "gradient_accumulation_steps", "0"), ("star", "logging_steps", "0"),
    ("star", "star_iterations", "0"), ("star", "star_questions", "0"), ("star", "star_fewshot", "-1"),
    ("star", "star_heldout", "-1"), ("star", "star_max_new_tokens", "0"),
    ("star", "star_generation_batch_size", "0"), ("star", "star_temperature", "-1"),
    ("star", "judge_concurrency", "0"), ("star", "judge_timeout", "0"), ("star", "judge_retries", "-1"),
    ("star", "dataset", "no_such_dataset"),
]


@pytest.mark.parametrize("kind, field, value", RANGE, ids=[f"{k}-{f}={v}" for k, f, v in RANGE])
def test_out_of_range_on_command_line(kind, field, value):
    message = refused(kind, [f"--{field}", value], f"--{field}", "must be")
    assert "must be" in message.split(f"--{field}", 1)[1]


@pytest.mark.parametrize("kind, field, value", RANGE[::4], ids=[f"{k}-{f}={v}" for k, f, v in RANGE[::4]])
def test_out_of_range_in_recipe_names_recipe_and_line(tmp_path, kind, field, value):
    path = recipe(tmp_path, f"use_cpu: true\nseed: 2\n{field}: {value}\n", name="ranged.yaml")
    refused(kind, ["--config", path], field, "ranged.yaml", "line 3", "must be")


def test_command_line_overrides_a_bad_recipe_value(tmp_path):
    path = recipe(tmp_path, "use_cpu: true\nmax_steps: 0\n")
    config, _ = parse("train", ["--config", path, "--max_steps", "3"])
    assert config.max_steps == 3


@pytest.mark.parametrize("kind, args, needles", [
    ("train", ["--max_steps", "-1", "--num_train_epochs", "0"], ["--num_train_epochs", "max_steps"]),
    ("train", ["--max_steps", "-1", "--num_train_epochs", "-2"], ["--num_train_epochs"]),
    ("sft", ["--max_steps", "-1", "--num_train_epochs", "0"], ["--num_train_epochs"]),
    ("train", ["--num_generations", "3"], ["num_generations", "per_device_train_batch_size 8", "divisible"]),
    ("train", ["--per_device_train_batch_size", "6", "--num_generations", "4"], ["num_generations", "6"]),
    ("train", ["--gradient_accumulation_steps", "3", "--per_device_train_batch_size", "2", "--num_generations", "4"],
     ["num_generations", "gradient_accumulation_steps 3"]),
    ("train", ["--generation_batch_size", "6"], ["--generation_batch_size", "per_device_train_batch_size"]),
    ("train", ["--generation_batch_size", "16", "--num_generations", "3"], ["num_generations"]),
    ("train", ["--steps_per_generation", "3", "--num_generations", "16"], ["num_generations", "steps_per_generation"]),
    ("train", ["--generation_batch_size", "16", "--steps_per_generation", "2"], ["not both"]),
    ("train", ["--eval_strategy", "steps"], ["--eval_strategy", "no"]),
    ("train", ["--eval_strategy", "steps", "--eval_steps", "0"], ["eval"]),
    ("sft", ["--eval_strategy", "epoch"], ["--eval_strategy"]),
    ("train", ["--dataset", "file"], ["dataset", "data_file"]),
    ("sft", ["--dataset", "file"], ["dataset", "data_file"]),
    ("train", ["--judge_url", "http://localhost:1/v1"], ["judge_model"]),
    ("star", ["--judge_model", "m"], ["judge_url"]),
    ("star", ["--star_backend", "magic"], ["--star_backend"]),
])
def test_relations_between_fields(kind, args, needles):
    refused(kind, args, *needles)


def test_trl_value_errors_come_out_as_one_line(monkeypatch):
    # bf16 on a machine without a bf16 GPU and without use_cpu: TRL's own multi-sentence ValueError. On a CPU
    # without native bf16 pasr declines bf16 first (test_emulated_bf16.py), so pretend one that has it.
    import torch

    import pasr.models

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU")
    monkeypatch.setattr(pasr.models, "cpu_supports_bf16", lambda: True)
    refused("train", ["--use_cpu", "false", "--bf16", "true"], "bf16")


@pytest.mark.parametrize("kind, args", [
    ("train", []),
    ("train", ["--max_steps", "-1", "--num_train_epochs", "1"]),
    ("train", ["--learning_rate", "1e-5", "--logging_steps", "0.5", "--save_steps", "0.25"]),
    ("train", ["--config=cpu-default.yaml", "--max_steps", "2"]),
    ("train", ["--warmup_examples", "0", "--baseline_samples", "2", "--temperature", "0.7"]),
    ("train", ["--per_device_train_batch_size", "4", "--num_generations", "2"]),
    ("train", ["--use_peft", "yes", "--lora_r", "8"]),
    ("sft", []),
    ("sft", ["--dataset", "file", "--data_file", "not/checked/while/parsing.jsonl"]),
    ("star", []),
])
def test_good_options_still_parse(kind, args):
    parse(kind, args)


def test_recipe_values_are_converted_like_the_command_line(tmp_path):
    path = recipe(tmp_path, "use_cpu: true\nlearning_rate: 5e-6\nuse_peft: yes\nsave_steps: 4.0\nmax_steps: '3'\n"
                            "report_to: none\nlr_scheduler_type: cosine\n")
    config, model_config = parse("train", ["--config", path])
    assert config.learning_rate == 5e-6 and model_config.use_peft is True
    assert config.save_steps == 4 and config.max_steps == 3


def test_packaged_recipes_pass_the_checks():
    for path in sorted(p for p in RECIPES.rglob("*.yaml") if "accelerate" not in p.parts):
        baseline = path.stem.removeprefix("cpu-")  # a baseline's recipe parses as `pasr baseline NAME`
        if baseline in names():
            parse_config(baseline, ["--config", str(path), "--use_cpu", "true"], path)
        else:
            parse("sft" if any(w in path.name for w in ("sft", "warmup")) else "train",
                  ["--config", str(path), "--use_cpu", "true"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_parsing_writes_nothing(tmp_path, monkeypatch, kind):
    # transformers 5's TrainingArguments.__post_init__ makes no folder; nor may anything of ours
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "new" / "run"
    config, _ = parse(kind, ["--output_dir", str(out)])
    check_paths(config)
    parse(kind, [])  # the packaged recipe's relative output_dir (runs/...)
    assert list(tmp_path.iterdir()) == []


def test_check_values_without_sources_names_the_field():
    with pytest.raises(PasrError, match=r"^max_steps=0: must be"):
        check_values({"max_steps": 0})
    check_values({"max_steps": -1, "num_train_epochs": 1.0})


# --- paths ------------------------------------------------------------------------------------


def test_output_dir_that_is_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for kind in KINDS:
        config, _ = parse(kind, ["--output_dir", str(afile)])
        with pytest.raises(PasrError, match="output_dir .*afile: exists and is not a folder"):
            check_paths(config)
        config, _ = parse(kind, ["--output_dir", str(afile / "run")])
        with pytest.raises(PasrError, match="output_dir .*is a file"):
            check_paths(config)


def test_read_only_output_dir(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    for path in (locked, locked / "run"):
        config, _ = parse("train", ["--output_dir", str(path)])
        with pytest.raises(PasrError, match="output_dir .*writable"):
            check_paths(config)
    with pytest.raises(PasrError, match="--output .*writable"):
        check_output_file(locked / "x.jsonl", "--output")


@pytest.mark.parametrize("kind, field, make", [
    ("train", "data_file", "missing"), ("train", "data_file", "folder"),
    ("sft", "data_file", "missing"), ("sft", "data_file", "folder"),
    ("star", "data_file", "missing"), ("star", "star_fewshot_file", "missing"),
    ("star", "star_heldout_file", "folder"),
    ("train", "rollout_log", "folder"), ("train", "rollout_log", "under a file"),
])
def test_input_and_log_paths(tmp_path, kind, field, make):
    afile = tmp_path / "afile"
    afile.write_text("x")
    path = {"missing": tmp_path / "missing.jsonl", "folder": tmp_path,
            "under a file": afile / "rollouts.jsonl"}[make]
    extra = ["--data_task", "math"] if field == "data_file" and kind != "sft" else []
    if field == "star_heldout_file":  # a held-out file is read only for a held-out benchmark
        extra = ["--star_heldout_benchmark", "gsm8k"]
    config, _ = parse(kind, ["--output_dir", str(tmp_path / "out"), f"--{field}", str(path), *extra])
    with pytest.raises(PasrError) as info:
        check_paths(config)
    assert field in str(info.value) and str(path) in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["train", "star"])
def test_training_records_file_needs_its_task(tmp_path, kind):
    data = tmp_path / "records.jsonl"
    data.write_text('{"question": "1+1?", "reference": "2"}\n')
    held = ["--star_heldout", "0"] if kind == "star" else []  # own training data: no built-in held-out split
    config, _ = parse(kind, ["--output_dir", str(tmp_path / "out"), "--dataset", "file", "--data_file", str(data),
                             *held])
    with pytest.raises(PasrError, match="data_task"):
        check_paths(config)
    config, _ = parse(kind, ["--output_dir", str(tmp_path / "out"), "--dataset", "file", "--data_file",
                             str(tmp_path / "missing.jsonl"), *held])
    with pytest.raises(PasrError, match="data_file .*missing.jsonl: no such file"):
        check_paths(config)
    assert not (tmp_path / "out").exists()


def test_check_output_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(PasrError, match="--output .*is a folder"):
        check_output_file(tmp_path, "--output")
    with pytest.raises(PasrError, match="--output .*is a file"):
        check_output_file(afile / "x.jsonl", "--output")
    assert check_output_file(tmp_path / "new" / "x.jsonl", "--output") == tmp_path / "new" / "x.jsonl"
    assert not (tmp_path / "new").exists()


def test_load_recipe_reports_lines(tmp_path):
    data, lines = load_recipe(recipe(tmp_path, "# comment\nmax_steps: 2\n\nbeta: 0.1\n"))
    assert data == {"max_steps": 2, "beta": 0.1} and lines == {"max_steps": 2, "beta": 4}


# --- the other commands' output options (CliRunner: no TRL import) ----------------------------

LOG = FIXTURES / "ift" / "rollouts.jsonl"


def _data_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    afile = tmp_path / "afile"
    afile.write_text("x")
    return [
        (["data", "synthetic", "--n", "3", "--output", str(tmp_path)], "--output"),
        (["data", "synthetic", "--n", "3", "--output", str(afile / "x.jsonl")], "--output"),
        (["data", "synthetic", "--n", "0", "--output", str(tmp_path / "s.jsonl")], "--n"),
        (["data", "synthetic", "--n", "3", "--difficulty", "9", "--output", str(tmp_path / "s.jsonl")],
         "--difficulty"),
        (["data", "warmup", "--n", "3", "--output", str(tmp_path)], "--output"),
        (["data", "warmup", "--n", "3", "--output", str(afile / "w.jsonl")], "--output"),
        (["data", "warmup", "--n", "3", "--refine-share", "2", "--output", str(tmp_path / "w.jsonl")],
         "--refine-share"),
        (["data", "warmup", "--records", str(tmp_path), "--output", str(tmp_path / "w.jsonl")], "--records"),
        (["data", "warmup", "--records", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "w.jsonl")],
         "--records"),
        (["data", "own-errors", "--model", "no-such-model", "--n", "3", "--output", str(tmp_path)], "--output"),
        (["data", "own-errors", "--model", "no-such-model", "--n", "3", "--output", str(afile / "o.jsonl")],
         "--output"),
        (["data", "own-errors", "--model", "no-such-model", "--batch-size", "0", "--output",
          str(tmp_path / "o.jsonl")], "--batch-size"),
        (["data", "own-errors", "--model", "no-such-model", "--refine-share", "0", "--output",
          str(tmp_path / "o.jsonl")], "--refine-share"),
    ]


def test_data_commands_refuse_bad_options_with_one_line(tmp_path):
    from pasr.cli import app

    runner = CliRunner()
    for args, option in _data_cases(tmp_path):
        before = sorted(tmp_path.rglob("*"))
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and option in lines[0], (args, result.output)
        assert sorted(tmp_path.rglob("*")) == before, args


def test_report_and_ift_data_refuse_bad_outputs(tmp_path):
    from pasr.cli import app

    afile = tmp_path / "afile"
    afile.write_text("x")
    runner = CliRunner()
    cases = [
        (["report", str(FIXTURES / "report"), "--out", str(afile)], "--out"),
        (["report", str(FIXTURES / "report"), "--out", str(afile / "rep")], "--out"),
        (["ift-data", str(LOG), "--output", str(tmp_path)], "--output"),
        (["ift-data", str(LOG), "--output", str(afile / "x.jsonl")], "--output"),
        (["ift-data", str(tmp_path)], "ROLLOUT_LOG"),
    ]
    for args, option in cases:
        before = sorted(tmp_path.rglob("*"))
        result = runner.invoke(app, args)
        assert isinstance(result.exception, PasrError), (args, result.output)
        assert option in str(result.exception) and "\n" not in str(result.exception)
        assert sorted(tmp_path.rglob("*")) == before, args


def test_cli_prints_any_error_as_one_unwrapped_line(capsys):
    from pasr.cli import print_error

    print_error(PasrError("first line\nsecond [bold]line[/bold] " + "x" * 300))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[bold]" in err and "second" in err


# --- the real script --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory):
    """A few real `pasr` runs, started together (each pays the TRL import)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "afile").write_text("x")
    (root / "tab.yaml").write_text("use_cpu: true\nmax_steps: 1\n\tbeta: 0.1\n")
    runs = {
        "malformed yaml": (["train", "--config", str(root / "tab.yaml"), "--output_dir", str(root / "o1")],
                           ["tab.yaml", "line 3"], root / "o1"),
        "max_steps 0": (["train", "--max_steps", "0", "--output_dir", str(root / "o2")], ["--max_steps 0"], root / "o2"),
        "output_dir a file": (["sft", "--max_steps", "1", "--output_dir", str(root / "afile" / "o3")],
                              ["output_dir", "afile"], root / "afile" / "o3"),
        "star batch 0": (["star", "--per_device_train_batch_size", "0", "--output_dir", str(root / "o4")],
                         ["--per_device_train_batch_size 0"], root / "o4"),
        "num_generations 0": (["train", "--num_generations", "0", "--output_dir", str(root / "o5")],
                              ["--num_generations 0"], root / "o5"),
        "config a folder": (["sft", "--config", str(root), "--output_dir", str(root / "o6")],
                            ["recipe", "folder"], root / "o6"),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
    procs = {name: subprocess.Popen([str(PASR), *args], cwd=root, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, (args, _, _) in runs.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    before = {p.name for p in root.iterdir()}
    return runs, results, before, root


@pytest.mark.parametrize("name", ["malformed yaml", "max_steps 0", "output_dir a file", "star batch 0",
                                  "num_generations 0", "config a folder"])
def test_real_script_refuses_with_one_line(script_runs, name):
    runs, results, before, _ = script_runs
    _, needles, out_dir = runs[name]
    rc, out, err = results[name]
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], err
    assert not out_dir.exists()
    assert before <= {"afile", "tab.yaml"}, before  # no runs/ or trainer_output/ in the working folder


@pytest.mark.parametrize("config_type, overrides, field", [
    (PasrGRPOConfig, {"max_steps": 0}, "max_steps"),
    (PasrGRPOConfig, {"num_generations": 0}, "num_generations"),
    (PasrGRPOConfig, {"per_device_train_batch_size": 6, "num_generations": 4}, "num_generations"),
    (PasrSFTConfig, {"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
    (StarConfig, {"star_iterations": 0}, "star_iterations"),
])
def test_configs_built_in_python_are_checked_too(tmp_path, config_type, overrides, field):
    with pytest.raises(PasrError, match=rf"^{field}="):
        config_type(output_dir=str(tmp_path / "o"), use_cpu=True, bf16=False, **overrides)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fields_a_recipe_leaves_out_keep_their_defaults(tmp_path, kind):
    # HfArgumentParser gives `report_to: str | list[str] = "none"` no parser default; it came out None
    # and training failed once started ("None is not supported").
    config_type, _ = KINDS[kind]
    config, model_config = parse(kind, ["--config", recipe(tmp_path, "use_cpu: true\n")])
    reference = config_type(use_cpu=True)
    for name in ("report_to", "max_steps", "learning_rate", "per_device_train_batch_size", "output_dir"):
        assert getattr(config, name) == getattr(reference, name), name
    assert model_config == ModelConfig()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--seed", "-1", r"--seed -1: must be an integer in \[0, 2\^32\)"),
     ("--report_to", "bogus", r"report_to.*'bogus' is not a logger transformers knows"),
     ("--output_dir", "", r"output_dir is empty")],
)
def test_values_found_by_a_new_user(tmp_path, flag, value, message):
    from pasr.train.checks import check_paths
    from pasr.train.command import DEFAULT_TRAIN_RECIPE, parse_config

    with pytest.raises(PasrError, match=message):
        config, _ = parse_config("train", [flag, value], DEFAULT_TRAIN_RECIPE)
        check_paths(config)


@pytest.mark.parametrize("name, field, value", [
    ("score", "score_alpha", "-2"), ("rise", "rise_best_of", "1"), ("ptr", "ptr_samples", "1"),
    ("star", "star_iterations", "0"),
])
def test_a_baselines_own_refusal_names_the_recipe_line_or_the_command_line(tmp_path, name, field, value):
    """Out-of-range values of a baseline's own fields (refused by its config class) point at where they came from."""
    from pasr.baselines.registry import get

    entry = get(name)
    path = recipe(tmp_path, entry.recipe_path.read_text() + f"\n{field}: {value}\n")
    line = len(Path(path).read_text().splitlines())
    message = str(pytest.raises(PasrError, parse_config, name, ["--config", path], entry.recipe_path).value)
    assert message.startswith(f"recipe {path}, line {line}: {field}") and "\n" not in message, message
    message = str(pytest.raises(PasrError, parse_config, name, [f"--{field}", value], entry.recipe_path).value)
    assert message.startswith(f"command line: {field}") or message.startswith(f"--{field}"), message
