"""The import rules between ttsrl's packages (README, Layout), read from every import statement with ``ast``.

Lower layers never import higher ones: a model file loads itself without the trainer, inference
never climbs into training recipes, and no module imports an entrypoint. When the layers change
on purpose, change FORBIDDEN here and the README's layout section together.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ttsrl"

#: package -> the ttsrl packages it must not import (directly or inside a function)
FORBIDDEN = {
    "utils": {"data", "text", "feats", "models", "losses", "train", "tasks", "align", "sample", "score", "bin"},
    "data": {"train", "tasks", "align", "bin", "models", "losses", "sample", "score"},
    "text": {"feats", "models", "losses", "train", "tasks", "align", "sample", "score", "bin"},
    "feats": {"models", "losses", "train", "tasks", "align", "sample", "score", "bin"},
    "models": {"train", "tasks", "align", "bin", "sample", "score"},
    "losses": {"train", "tasks", "align", "bin", "sample", "score"},
    "sample": {"tasks", "bin"},
    "score": {"tasks", "bin"},
    "align": {"tasks", "bin"},
    "train": {"tasks", "align", "bin"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``import``/``from ... import`` of a file (``from ttsrl import bin`` counts
    as ``ttsrl.bin``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "ttsrl":
                out += [(node.lineno, f"ttsrl.{a.name}") for a in node.names]
    return out


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ttsrl" and len(parts) > 1 else None


def violations(files, rule) -> list[str]:
    found = []
    for path in files:
        for line, module in imported_modules(path):
            if rule(path, module):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package):
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files, package
    bad = violations(files, lambda path, module: package_of(module) in FORBIDDEN[package])
    assert not bad, "\n".join(bad)


def test_nothing_imports_an_entrypoint():
    """ttsrl.bin is the top: entrypoints call the library, never each other (nor does bench or a recipe)."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    files += sorted(p for p in (ROOT / "egs").glob("*/*/local/*.py"))
    bad = violations(files, lambda path, module: package_of(module) == "bin")
    assert not bad, "\n".join(bad)


def test_the_rules_see_imports_inside_functions(tmp_path):
    """A lazy import counts as much as one at the top (the way such doors hide)."""
    f = tmp_path / "m.py"
    f.write_text("def load():\n    from ttsrl.train.trainer import load_model\n    from ttsrl import bin\n")
    assert imported_modules(f) == [(2, "ttsrl.train.trainer"), (3, "ttsrl"), (3, "ttsrl.bin")]


def test_tasks_keep_their_state_on_the_instance():
    """A task's caches and timers belong to one run: the classes hold methods and their description only."""
    import inspect

    from ttsrl.tasks.base import Task

    modules = [p.stem for p in (PACKAGE / "tasks").glob("*.py") if p.stem not in ("__init__", "base")]
    classes = set()
    for name in modules:
        mod = __import__(f"ttsrl.tasks.{name}", fromlist=["_"])
        classes |= {c for _, c in inspect.getmembers(mod, inspect.isclass) if issubclass(c, Task) and c is not Task}
    assert {c.__name__ for c in classes} >= {"AlignTask", "ASRTask", "FlowTask", "LMTask", "RewardTask",
                                             "TokenizerTask", "VocoderTask"}
    for cls in classes:
        state = {k: v for k, v in vars(cls).items() if not k.startswith("__") and k != "description"
                 and not callable(v) and not isinstance(v, (staticmethod, classmethod, property))}
        assert not state, f"{cls.__name__} keeps {sorted(state)} on the class"
