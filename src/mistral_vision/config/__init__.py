"""Typed run configuration: dataclasses, YAML loading, ``--set`` overrides, validation.

One :class:`RunConfig` describes a whole experiment (route, data, ASCII format or vision
tower, prompt, model, training stages, evaluation). ``route`` (``ascii`` | ``llava``, default
``ascii``) decides which sections apply; validation hands off per route. Unknown keys are
errors naming the key and the known ones. Configs are never mutated after loading: overrides
produce a new object. The resolved config is dumped into every run directory as
``config.yaml`` and ``config.json``. By concern:

- ``schema.py``: the sections as frozen dataclasses, and each choice list once;
- ``coerce.py``: YAML values -> the annotated types (and back);
- ``overrides.py``: ``--set key=value``;
- ``recipes.py``: training stages and their defaults (LLaVA-1.5's two stages), chat template per stage;
- ``checks.py``: validation of a whole config;
- ``files.py``: load a YAML config, dump and reload a run's resolved one.

Not for: the registries themselves (datasets, backbones, templates live beside their code).
"""
from .checks import check_select, validate
from .coerce import SHORTHANDS, from_dict, to_dict
from .files import dump_config, load_config, load_run_config, read_yaml_mapping
from .overrides import apply_overrides
from .recipes import complete, default_stages, inference_template, resolve_stages
from .schema import (BACKENDS, CHOICES, DATA_FORMATS, DTYPES, LOSS_REDUCTIONS, MIXED_PRECISIONS, PARTS, SELECT_CHOICES,
                     SELECT_METHODS, SELECT_NEEDS_RUN, TOKENIZER_KINDS, VQA_GRIDS, VQA_TTA, AsciiConfig, ApiConfig,
                     DataConfig, EvalConfig, LoraConfig, ModelConfig, PromptConfig, RunConfig, SelectConfig, StageConfig,
                     TokenizerConfig, TrainConfig, VisionConfig)

__all__ = ["ApiConfig", "AsciiConfig", "BACKENDS", "CHOICES", "DATA_FORMATS", "DTYPES", "DataConfig",
           "EvalConfig", "LOSS_REDUCTIONS", "LoraConfig", "MIXED_PRECISIONS", "ModelConfig", "PARTS",
           "PromptConfig", "RunConfig", "SELECT_CHOICES", "SELECT_METHODS", "SELECT_NEEDS_RUN",
           "SHORTHANDS", "SelectConfig", "StageConfig", "TOKENIZER_KINDS", "TokenizerConfig", "TrainConfig",
           "VQA_GRIDS", "VQA_TTA", "VisionConfig", "apply_overrides", "check_select", "complete",
           "default_stages", "dump_config", "from_dict", "inference_template", "load_config",
           "load_run_config", "read_yaml_mapping", "resolve_stages", "to_dict", "validate"]
