"""The learned codecs' boundaries, read from the source with ``ast`` (nothing is run).

Would fail if a learned codec imported a sibling (e.g. ISC borrowing AM-VQ's data
helpers again), or if anything the codec registry loads for inference reached a training
module (the trainer, losses, augmentation, tqdm), directly or through other modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CODECS = ("sqgan", "amvq", "isc")
#: Modules only training needs; inference must reach none of them.
TRAINING = ("semcomm.codecs.learned.trainer", "semcomm.codecs.learned.data",
            "semcomm.codecs.learned.perceptual", "semcomm.codecs.learned.cli",
            "semcomm.segmentation.train", "tqdm",
            *(f"semcomm.codecs.{c}.{m}" for c in CODECS for m in ("train", "losses", "augment")))


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, name: str) -> set[str]:
    """Absolute names of the modules ``path`` (module ``name``) imports, at any depth of
    its code (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if _module_file(f"{base}.{alias.name}") is not None)
    return found


def _closure(start: str) -> set[str]:
    """Every module reachable from ``start`` (parent packages' ``__init__`` included)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            mod = ".".join(parts[:k])
            if mod in seen:
                continue
            seen.add(mod)
            path = _module_file(mod)
            if path is not None:
                todo.extend(_imports(path, mod))
    return seen


@pytest.mark.parametrize("codec", CODECS)
def test_no_learned_codec_imports_another(codec: str) -> None:
    offenders = []
    for path in sorted((ROOT / "semcomm" / "codecs" / codec).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for imported in _imports(path, name):
            other = imported.split(".")[2] if imported.startswith("semcomm.codecs.") else None
            if other in CODECS and other != codec:
                offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not offenders, offenders


@pytest.mark.parametrize("module", [*(f"semcomm.codecs.{c}" for c in CODECS),
                                    *(f"semcomm.codecs.{c}.codec" for c in CODECS),
                                    "semcomm.codecs.registry", "semcomm.pipeline"])
def test_inference_reaches_no_training_module(module: str) -> None:
    reached = _closure(module)
    assert reached & set(TRAINING) == set(), sorted(reached & set(TRAINING))


def test_the_checker_sees_training_imports() -> None:
    # The closure is not vacuous: a trainer does reach the loop, the losses and tqdm.
    reached = _closure("semcomm.codecs.isc.train")
    assert {"semcomm.codecs.learned.trainer", "semcomm.codecs.isc.losses", "tqdm"} <= reached


@pytest.mark.parametrize("codec", CODECS)
def test_packages_need_no_lazy_getattr(codec: str) -> None:
    # The model file moved out of train.py, so __init__ imports load_model directly.
    tree = ast.parse((ROOT / "semcomm" / "codecs" / codec / "__init__.py").read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "__getattr__" not in names
