"""Configuration: YAML files as argparse defaults, dataclass options, name->class registries.

The ESPnet way: a YAML file given with ``--config`` supplies the defaults of an argparse
parser, every key must be a known option (a typo is an error that names the key and the
file), and the command line overrides the file. The resolved options are written next to
the model with :func:`dump_config`, so ``--config exp/x/config.yaml`` reproduces a run.

Models are built by name from a :class:`Registry`; each model class takes one
``@dataclass`` config, and ``--model_conf`` (a :class:`NestedDictAction`) fills it.

Usage::

    from ttsrl.utils.config import (NestedDictAction, Registry, add_config_args,
                                    add_dataclass_args, dataclass_from_args, dump_config,
                                    option, parse_with_config)

    MODELS = Registry("model")

    @dataclass
    class MlpConfig:
        d_in: int = 8
        d_hidden: int = option(32, "hidden units")      # --d_hidden in add_dataclass_args

    @MODELS.register("mlp")
    class Mlp(nn.Module):
        def __init__(self, config: MlpConfig): ...

    parser = argparse.ArgumentParser()
    add_config_args(parser)
    parser.add_argument("--model", default="mlp", choices=MODELS.names())
    parser.add_argument("--model_conf", action=NestedDictAction, default={})
    add_dataclass_args(parser, TrainerConfig)
    args = parse_with_config(parser, ["--config", "conf/x.yaml", "--lr", "1e-4",
                                      "--model_conf", "d_hidden=64"])
    model = MODELS.build(args.model, args.model_conf)
    trainer_config = dataclass_from_args(TrainerConfig, args)
    dump_config(args, "exp/x/config.yaml")
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ttsrl.utils.fileio import atomic_write_text

__all__ = [
    "ConfigError",
    "NestedDictAction",
    "Registry",
    "add_config_args",
    "add_dataclass_args",
    "coerce",
    "dataclass_from_args",
    "dump_config",
    "load_yaml",
    "option",
    "parse_with_config",
    "str2bool",
    "to_plain",
    "yaml_loads",
]


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message says which and where."""


# --------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float.

    YAML 1.1 (what PyYAML implements) needs a dot in a float, so ``lr: 1e-3`` would
    silently be the string "1e-3"; YAML 1.2 and every user expect a number.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_loads(text: str) -> Any:
    """Parse YAML text (safe, with ``1e-3`` read as a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping from ``path``; an empty file gives ``{}``."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml_loads(f.read())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    return data


def to_plain(obj: Any) -> Any:
    """Turn namespaces, dataclasses, paths, tuples and numpy scalars into YAML-safe types."""
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return str(obj)


def dump_config(config: argparse.Namespace | Mapping | Any, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML (atomically) and return the path.

    ``config`` is an argparse namespace, a mapping or a dataclass. The ``config`` key
    (the file the options came from) is left out: the dump is itself the full config.
    """
    data = to_plain(config)
    if isinstance(data, dict):
        data.pop("config", None)
    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))
    return path


# --------------------------------------------------------------------------- types


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def str2bool(value: str | bool) -> bool:
    """Parse a boolean strictly (true/false/yes/no/1/0); anything else is an error."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def _none_or(tp: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        if value is None or str(value).strip().lower() in ("none", "null", "~", ""):
            return None
        return tp(value)

    parse.__name__ = getattr(tp, "__name__", "value")
    return parse


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (hint, False)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) == 1:
            return args[0], optional
        return typing.Union[tuple(args)], optional  # noqa: UP007 - built from a runtime tuple
    return hint, False


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert what is safe to convert.

    Strings from the command line become numbers/booleans, YAML lists become tuples,
    ints become floats. A value of the wrong kind raises :class:`ConfigError` naming
    ``where`` (e.g. ``"model_conf.d_model"``).
    """
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    inner, optional = _split_optional(hint)
    if optional and (value is None or isinstance(value, str) and value.strip().lower() in ("none", "null")):
        return None
    if value is None:
        raise ConfigError(f"{where}: None is not allowed (expected {_hint_name(hint)})")
    origin = typing.get_origin(inner)
    try:
        if inner is bool:
            if isinstance(value, str):
                return str2bool(value)
            if isinstance(value, bool):
                return value
        elif inner is int:
            if isinstance(value, str):
                return int(value)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif inner is float:
            if isinstance(value, str):
                return float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif inner is str:
            if isinstance(value, str):
                return value
        elif origin is typing.Literal:
            if value in typing.get_args(inner):
                return value
        elif origin in (tuple, list) or inner in (tuple, list):
            if isinstance(value, str):
                value = yaml_loads(value)
            if isinstance(value, (list, tuple)):
                args = typing.get_args(inner)
                if origin is tuple and args and args[-1] is not Ellipsis:
                    if len(args) != len(value):
                        raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}: {value!r}")
                    items = [coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
                else:
                    elem = args[0] if args else Any
                    items = [coerce(v, elem, f"{where}[{i}]") for i, v in enumerate(value)]
                return tuple(items) if (origin or inner) is tuple else list(items)
        elif origin is dict or inner is dict:
            if isinstance(value, str):
                value = yaml_loads(value)
            if isinstance(value, dict):
                return value
        elif dataclasses.is_dataclass(inner) and isinstance(inner, type):
            if isinstance(value, inner):
                return value
            if isinstance(value, Mapping):
                return build_dataclass(inner, value, where)
        elif isinstance(inner, type):
            if isinstance(value, inner):
                return value
        else:  # unions of several types and other exotic hints: accept as given
            return value
    except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: expected {_hint_name(hint)}, got {value!r}") from e
    raise ConfigError(f"{where}: expected {_hint_name(hint)}, got {value!r} ({type(value).__name__})")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _field_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to no checking
        return {f.name: Any for f in dataclasses.fields(cls)}


def build_dataclass(cls: type, conf: Mapping[str, Any] | None, where: str | None = None) -> Any:
    """Instantiate the dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    conf = dict(conf or {})
    where = where or cls.__name__
    fields = [f for f in dataclasses.fields(cls) if f.init]
    valid = [f.name for f in fields]
    unknown = sorted(set(conf) - set(valid))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(valid)}"
        )
    hints = _field_hints(cls)
    kwargs = {k: coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in conf.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # e.g. a required field without a value
        raise ConfigError(f"{where}: {e}") from e


# --------------------------------------------------------------------------- argparse


class NestedDictAction(argparse.Action):
    """An option holding a dict, set from YAML and merged from the command line.

    Accepts ``key=value`` (``a.b=1`` for nested keys; the value is parsed as YAML) or a
    YAML mapping (``'{d_model: 256, n_layers: 4}'``); repeated uses merge into the
    default, so ``--model_conf n_layers=2`` changes one key of the YAML's ``model_conf``.
    """

    def __init__(self, option_strings, dest, default=None, **kwargs):
        super().__init__(option_strings, dest, default=default if default is not None else {}, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        current = copy.deepcopy(current) if isinstance(current, dict) else {}
        text = values.strip()
        if "=" in text and not text.startswith("{"):
            key, val = text.split("=", 1)
            keys = key.strip().split(".")
            node = current
            for k in keys[:-1]:
                if not isinstance(node.get(k), dict):
                    node[k] = {}
                node = node[k]
            node[keys[-1]] = yaml_loads(val) if val.strip() else ""
        else:
            try:
                update = yaml_loads(text)
            except yaml.YAMLError as e:
                parser.error(f"{option_string}: not key=value nor a YAML mapping: {values!r} ({e})")
            if not isinstance(update, dict):
                parser.error(f"{option_string}: expected key=value or a YAML mapping, got {values!r}")
            _deep_merge(current, update)
        setattr(namespace, self.dest, current)


def _deep_merge(base: dict, update: Mapping) -> dict:
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def add_config_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--config FILE.yaml`` (the parser's defaults; the command line overrides it)."""
    parser.add_argument(
        "--config",
        type=str,
        default=None,
        help="YAML file whose keys are options of this program (command-line options override it)",
    )
    return parser


def _option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    skip = {"help", "config", argparse.SUPPRESS}
    return {a.dest: a for a in parser._actions if a.dest not in skip}


def _check_yaml_value(action: argparse.Action, value: Any, key: str, path: str) -> Any:
    """Validate a YAML value as argparse would validate it on the command line."""
    if value is None:
        return None
    where = f"{path}: {key}"
    if isinstance(action, NestedDictAction):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return value
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    multi = action.nargs not in (None, "?")
    items = value if multi and isinstance(value, (list, tuple)) else [value]
    if multi and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    if isinstance(action.nargs, int) and len(items) != action.nargs:
        raise ConfigError(f"{where}: expected {action.nargs} values, got {len(items)}")
    out = []
    for v in items:
        if action.type is not None and not isinstance(v, (dict, list)):
            if action.type in (int, float) and isinstance(v, bool):
                raise ConfigError(f"{where}: expected {action.type.__name__}, got {v!r}")
            try:
                v = action.type(v if isinstance(v, str) else str(v))
            except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
                raise ConfigError(f"{where}: {e}") from e
        if action.choices is not None and v not in action.choices:
            raise ConfigError(
                f"{where}: invalid choice {v!r} (choose from {', '.join(map(repr, action.choices))})"
            )
        out.append(v)
    return out if multi else out[0]


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` with the YAML file of ``--config`` as defaults.

    Every YAML key must be an option of ``parser``; otherwise the program exits with an
    error naming the key and the file (as argparse does for an unknown option). Values
    are checked with the option's ``type`` and ``choices``.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=str, default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config:
        if not os.path.isfile(known.config):
            parser.error(f"--config {known.config}: no such file")
        try:
            conf = load_yaml(known.config)
        except ConfigError as e:
            parser.error(str(e))
        actions = _option_actions(parser)
        unknown = [k for k in conf if k not in actions]
        if unknown:
            parser.error(
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"in {known.config}; valid keys: {', '.join(sorted(actions))}"
            )
        defaults = {}
        for key, value in conf.items():
            try:
                defaults[key] = _check_yaml_value(actions[key], value, key, known.config)
            except ConfigError as e:
                parser.error(str(e))
            if actions[key].required:  # the file supplies it
                actions[key].required = False
        parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def _dataclass_arg_type(hint: Any) -> tuple[dict[str, Any], str]:
    """argparse keyword arguments for a dataclass field type."""
    inner, optional = _split_optional(hint)
    origin = typing.get_origin(inner)
    if inner is bool:
        tp: Any = str2bool
    elif inner in (int, float, str):
        tp = inner
    elif origin is tuple or origin is list:
        args = typing.get_args(inner)
        elem = args[0] if args else str
        nargs: Any = len(args) if origin is tuple and args and args[-1] is not Ellipsis else "+"
        tp = _none_or(elem) if optional else elem
        return {"type": tp, "nargs": nargs}, getattr(elem, "__name__", "value")
    elif origin is dict or inner is dict:
        return {"action": NestedDictAction}, "dict"
    else:
        tp = str
    return {"type": _none_or(tp) if optional else tp}, getattr(inner, "__name__", "value")


def option(default: Any = dataclasses.MISSING, help: str = "", choices: Iterable[Any] | None = None) -> Any:
    """A dataclass field with its help text (and choices) for :func:`add_dataclass_args`.

    A mutable default (a dict or a list) gets one copy per instance; a field without a
    default is a required option.
    """
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def add_dataclass_args(
    parser: argparse.ArgumentParser, cls: type, group: str | None = None, prefix: str = ""
) -> argparse.ArgumentParser:
    """Add one ``--<prefix><field>`` option per field of the dataclass ``cls``.

    Help text and choices come from ``field(metadata={"help": ..., "choices": [...]})`` (see
    :func:`option`); a field without a default is a required option (a ``--config`` file may
    give it). Read the options back with :func:`dataclass_from_args`.
    """
    target = parser.add_argument_group(group) if group else parser
    hints = _field_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kwargs, _ = _dataclass_arg_type(hints.get(f.name, str))
        if "choices" in f.metadata:
            kwargs["choices"] = list(f.metadata["choices"])
        help_text = f.metadata.get("help", "")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            target.add_argument(f"--{prefix}{f.name}", required=True, help=f"{help_text} (required)".strip(), **kwargs)
            continue
        # argparse fills %(default)s in; ArgumentDefaultsHelpFormatter sees it and adds no second "(default: ...)";
        # a help text that names its default itself keeps its own words
        kwargs["help"] = help_text if "(default" in help_text else f"{help_text} (default: %(default)s)".strip()
        target.add_argument(f"--{prefix}{f.name}", default=copy.deepcopy(default), **kwargs)
    return parser


def dataclass_from_args(cls: type, args: argparse.Namespace | Mapping, prefix: str = "") -> Any:
    """Build the dataclass ``cls`` from the options added by :func:`add_dataclass_args`."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    conf = {}
    for f in dataclasses.fields(cls):
        if f.init and f"{prefix}{f.name}" in values:
            conf[f.name] = values[f"{prefix}{f.name}"]
    return build_dataclass(cls, conf, where=cls.__name__)


# --------------------------------------------------------------------------- registry


class Registry:
    """Name -> class table; each class is built from one ``@dataclass`` config.

    The config class is taken, in this order, from ``register(name, config=...)``, the
    class attribute ``config_class``, or the annotation of the first ``__init__``
    argument. ``build(name, conf)`` returns ``cls(Config(**conf))`` after checking that
    every key of ``conf`` is a field of ``Config``.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, tuple[type, type]] = {}

    def register(self, name: str, config: type | None = None) -> Callable[[type], type]:
        def decorator(cls: type) -> type:
            if name in self._classes and self._classes[name][0] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered to {self._classes[name][0].__name__}")
            config_cls = config or getattr(cls, "config_class", None) or _init_config_class(cls)
            if config_cls is None or not dataclasses.is_dataclass(config_cls):
                raise TypeError(
                    f"{self.kind} {name!r}: {cls.__name__} must take a @dataclass config as its first "
                    "argument (annotate it, set `config_class`, or pass register(name, config=...))"
                )
            self._classes[name] = (cls, config_cls)
            return cls

        return decorator

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def get(self, name: str) -> type:
        return self._lookup(name)[0]

    def config_class(self, name: str) -> type:
        return self._lookup(name)[1]

    def _lookup(self, name: str) -> tuple[type, type]:
        if name not in self._classes:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or '(none)'}")
        return self._classes[name]

    def build_config(self, name: str, conf: Mapping[str, Any] | None = None) -> Any:
        """The config dataclass of ``name`` filled from ``conf`` (unknown keys rejected)."""
        _, config_cls = self._lookup(name)
        return build_dataclass(config_cls, conf, where=f"{self.kind} {name!r} config")

    def build(self, name: str, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """``cls(Config(**conf), **kwargs)`` for the class registered as ``name``."""
        cls, _ = self._lookup(name)
        return cls(self.build_config(name, conf), **kwargs)


def _init_config_class(cls: type) -> type | None:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        hints = typing.get_type_hints(cls.__init__)
    except (TypeError, ValueError, NameError):
        return None
    if not params:
        return None
    hint = hints.get(params[0].name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None
