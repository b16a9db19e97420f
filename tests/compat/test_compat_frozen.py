"""Every frozen dataclass in connmgr says which class and field, and what to do instead."""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import importlib.util
import pickle
import pkgutil
from pathlib import Path

import pytest

import connmgr
from connmgr.frozen import explain_frozen

PACKAGE = Path(connmgr.__file__).parent


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _modules() -> list[object]:
    """Every connmgr module that imports here (Qt ones need PySide6; optional extras may miss)."""
    modules = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="connmgr."):
        if info.name.startswith("connmgr.qt") and not _have("PySide6"):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError as exc:
            if (exc.name or "").startswith("connmgr"):
                raise  # a broken connmgr import is a failure, not a missing extra
    return modules


MODULES = _modules()


def _frozen_classes() -> list[type]:
    found = []
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__  # type: ignore[attr-defined]
                and dataclasses.is_dataclass(value)
                and value.__dataclass_params__.frozen  # type: ignore[attr-defined]
            ):
                found.append(value)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


FROZEN = _frozen_classes()


def _declared_frozen() -> int:
    """How many ``@dataclass(frozen=True, ...)`` the sources of those modules declare."""
    count = 0
    for module in MODULES:
        source = Path(module.__file__).read_text(encoding="utf-8")  # type: ignore[attr-defined]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                for deco in node.decorator_list:
                    if isinstance(deco, ast.Call) and any(
                        k.arg == "frozen"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is True
                        for k in deco.keywords
                    ):
                        count += 1
    return count


def test_every_declared_frozen_dataclass_is_found():
    assert len(FROZEN) == _declared_frozen() >= 30


@pytest.mark.parametrize("cls", FROZEN, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_assigning_names_the_class_and_the_field_and_points_to_replace(cls):
    instance = object.__new__(cls)  # no arguments needed: only assignment is tested
    for field in [f.name for f in dataclasses.fields(cls)][:3]:
        with pytest.raises(dataclasses.FrozenInstanceError) as info:
            setattr(instance, field, None)
        message = str(info.value)
        assert f"{cls.__name__}.{field}" in message and "dataclasses.replace" in message
        with pytest.raises(dataclasses.FrozenInstanceError, match=rf"{cls.__name__}\.{field}"):
            delattr(instance, field)
    # The 3.11 slots bug answered a name that is not a field with an obscure TypeError.
    with pytest.raises(dataclasses.FrozenInstanceError, match=rf"{cls.__name__}\.not_a_field"):
        instance.not_a_field = 1


@explain_frozen
@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("Point.x must be >= 0")


def test_construction_replace_copy_and_pickle_still_work():
    point = Point(1, 2)
    assert dataclasses.replace(point, y=5) == Point(1, 5)
    assert copy.copy(point) == copy.deepcopy(point) == pickle.loads(pickle.dumps(point)) == point
    assert hash(point) == hash(Point(1, 2))
    with pytest.raises(ValueError, match=r"Point\.x"):
        dataclasses.replace(point, x=-1)


def test_the_message_lists_the_fields_when_the_name_is_not_one():
    with pytest.raises(dataclasses.FrozenInstanceError) as info:
        Point(1).z = 3  # type: ignore[attr-defined]
    assert "has no field 'z' (fields: x, y)" in str(info.value)


def test_a_plain_subclass_may_still_set_its_own_attributes():
    @explain_frozen
    @dataclasses.dataclass(frozen=True)
    class Base:
        x: int

    class Child(Base):
        def __init__(self, x: int) -> None:
            super().__init__(x)
            self.note = "extra"

    child = Child(1)
    assert child.note == "extra"
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"Child\.x"):
        child.x = 2


@pytest.mark.parametrize("target", [int, dataclasses.dataclass(type("Loose", (), {}))])
def test_only_frozen_dataclasses_are_accepted(target):
    with pytest.raises(TypeError, match="frozen dataclasses"):
        explain_frozen(target)


def test_the_module_imports_nothing_of_connmgr():
    tree = ast.parse((PACKAGE / "frozen.py").read_text(encoding="utf-8"))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith("connmgr")]


def _examples() -> list[object]:
    from connmgr.network import ConnectProbe, TcpProbe
    from connmgr.retry import Decision, StopReason
    from connmgr.timeouts import TimeoutConfig

    return [
        TimeoutConfig.for_search(),
        Decision(False, reason=StopReason.EXHAUSTED),
        TcpProbe("127.0.0.1", 8080),
        ConnectProbe("127.0.0.1", 8080),
    ]


@pytest.mark.parametrize("value", _examples(), ids=lambda v: type(v).__name__)
def test_connmgr_values_still_replace_copy_and_pickle(value):
    first = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    changed = dataclasses.replace(value, **{first: getattr(value, first)})  # type: ignore[type-var]
    assert changed == value
    assert copy.copy(value) == copy.deepcopy(value) == pickle.loads(pickle.dumps(value)) == value
    with pytest.raises(dataclasses.FrozenInstanceError, match=rf"{type(value).__name__}\.{first}"):
        setattr(value, first, None)
