"""The Powertools layer's contents come from uv.lock: exact versions, wheel hashes, no SDK copy."""

from __future__ import annotations

from typing import Any

import pytest

from infra.powertools import (
    PROVIDED_BY_RUNTIME,
    LayerBuildError,
    LockedPackage,
    locked_packages,
    read_lock,
    requirements_text,
)

pytestmark = pytest.mark.synth


def _package(name: str, version: str = "1.0", *, optional: Any = None, **extra: Any) -> dict[str, Any]:
    entry = {"name": name, "version": version, "wheels": [{"hash": f"sha256:{name}"}], **extra}
    if optional is not None:
        entry["optional-dependencies"] = optional
    return entry


def test_the_project_lock_gives_powertools_with_the_tracer_and_nothing_the_runtime_has() -> None:
    packages = locked_packages(read_lock())
    assert [(locked.name, locked.version) for locked in packages] == [
        ("aws-lambda-powertools", "3.37.0"),
        ("aws-xray-sdk", "2.15.0"),
        ("typing-extensions", "4.16.0"),
        ("wrapt", "2.5.2"),
    ]
    assert all(
        locked.wheel_hashes and all(h.startswith("sha256:") for h in locked.wheel_hashes)
        for locked in packages
    )
    assert not {locked.name for locked in packages} & PROVIDED_BY_RUNTIME


def test_requirements_pin_versions_and_hashes() -> None:
    text = requirements_text([LockedPackage("wrapt", "2.5.2", ("sha256:aa", "sha256:bb"))])
    assert text == "wrapt==2.5.2 --hash=sha256:aa --hash=sha256:bb\n"


def test_extras_of_dependencies_are_followed() -> None:
    lock = {
        "package": [
            _package("root", dependencies=[{"name": "child", "extra": ["fast"]}]),
            _package("child", optional={"fast": [{"name": "speedup"}]}),
            _package("speedup"),
            _package("boto3"),
        ]
    }
    assert [p.name for p in locked_packages(lock, "root", ())] == ["child", "root", "speedup"]


def test_dependency_cycles_end() -> None:
    lock = {
        "package": [
            _package("a", dependencies=[{"name": "b", "extra": ["x"]}]),
            _package("b", dependencies=[{"name": "a"}], optional={"x": [{"name": "b"}]}),
        ]
    }
    assert [p.name for p in locked_packages(lock, "a", ())] == ["a", "b"]


def test_what_it_cannot_decide_alone_is_an_error() -> None:
    with pytest.raises(LayerBuildError, match="root depends on child under the marker"):
        locked_packages(
            {
                "package": [
                    _package("root", dependencies=[{"name": "child", "marker": "python_version < '3.12'"}])
                ]
            },
            "root",
            (),
        )
    with pytest.raises(LayerBuildError, match="holds 2 versions of root"):
        locked_packages({"package": [_package("root", "1"), _package("root", "2")]}, "root", ())
    with pytest.raises(LayerBuildError, match="root has no extra 'tracer'"):
        locked_packages({"package": [_package("root")]}, "root", ("tracer",))
    with pytest.raises(LayerBuildError, match=r"root 1\.0 has no wheels"):
        locked_packages({"package": [{"name": "root", "version": "1.0"}]}, "root", ())
