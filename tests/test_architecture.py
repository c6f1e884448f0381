"""Imports flow one way: simulator -> data -> offline_training -> exported_models -> stream."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(ROOT)), node.module))
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_stream_imports_neither_simulator_training_torch_nor_click():
    bad = [
        (f, m)
        for f, m in _imports("stream")
        if _top(m) in {"simulator", "offline_training", "torch", "click", "cli"}
    ]
    assert bad == []


#: The data contracts the simulator writes to (DESIGN.md 3): columns and split manifests.
CONTRACTS = {"stream.schema", "stream.splits"}


def test_simulator_imports_only_the_stream_data_contracts():
    bad = [
        (f, m)
        for f, m in _imports("simulator")
        if (_top(m) == "stream" and m not in CONTRACTS)
        or _top(m) in {"offline_training", "torch", "onnxruntime", "click", "cli"}
    ]
    assert bad == []


def test_offline_training_never_imports_simulator_or_cli():
    bad = [
        (f, m) for f, m in _imports("offline_training") if _top(m) in {"simulator", "click", "cli"}
    ]
    assert bad == []


@pytest.mark.parametrize("package", ["simulator", "stream", "offline_training"])
def test_library_code_never_imports_click(package):
    assert [m for _, m in _imports(package) if _top(m) == "click"] == []


def test_onnxruntime_is_loaded_in_one_stream_module_only():
    users = {f for f, m in _imports("stream") if _top(m) == "onnxruntime"}
    assert len(users) <= 1
