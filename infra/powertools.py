"""Powertools for AWS Lambda (Python) as a layer of this stack, built from ``uv.lock`` without Docker.

Why not the public Powertools layer: its version number for a given Powertools release differs
from the release number and could not be verified here for 3.37.0; a layer built from the lock
file runs exactly the versions the tests ran, in every partition and region, with no dependency on
another account's layer. The cost is a synth-time ``uv pip install`` (a fraction of a second from
uv's cache) and a layer of about 6 MB unzipped in the deployment bucket.

How: CDK local bundling (:class:`UvLayerBundling`) runs ``uv pip install --target`` for the
Lambda platform (arm64, manylinux2014, CPython 3.14) with ``--only-binary`` and the lock's wheel
hashes, so nothing is compiled and nothing unpinned slips in. The packages are
``aws-lambda-powertools[tracer]`` and its dependencies as locked, minus what the Lambda Python
runtime already has (boto3 and its dependencies: a copy in the layer would shadow the runtime's
and could mismatch it). The asset hash is the requirements text, so an unchanged lock is never
bundled twice into the same cloud assembly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling, RemovalPolicy
from aws_cdk import aws_lambda as lambda_

if TYPE_CHECKING:
    from constructs import Construct

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
LOCK_FILE: Final = REPO_ROOT / "uv.lock"
PACKAGE: Final = "aws-lambda-powertools"
EXTRAS: Final = ("tracer",)
#: In every Lambda Python runtime (boto3 and what it needs); never shadowed by the layer.
PROVIDED_BY_RUNTIME: Final = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
RUNTIME: Final = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE: Final = lambda_.Architecture.ARM_64
PYTHON_VERSION: Final = "3.14"
PYTHON_PLATFORM: Final = "aarch64-manylinux2014"


class LayerBuildError(RuntimeError):
    """The Powertools layer could not be built; the message says what to do."""


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    wheel_hashes: tuple[str, ...]

    def requirement(self) -> str:
        hashes = " ".join(f"--hash={digest}" for digest in self.wheel_hashes)
        return f"{self.name}=={self.version} {hashes}"


def locked_packages(
    lock: dict[str, Any],
    package: str = PACKAGE,
    extras: tuple[str, ...] = EXTRAS,
    provided: frozenset[str] = PROVIDED_BY_RUNTIME,
) -> list[LockedPackage]:
    """``package[extras]`` and everything it depends on in a parsed ``uv.lock``, minus ``provided``,
    sorted by name. Fails on what it cannot decide alone (markers, several locked versions)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for entry in lock.get("package", []):
        by_name.setdefault(entry["name"], []).append(entry)

    def entry_of(name: str) -> dict[str, Any]:
        entries = by_name.get(name, [])
        if len(entries) != 1:
            raise LayerBuildError(
                f"uv.lock holds {len(entries)} versions of {name}; the layer needs exactly one"
            )
        return entries[0]

    found: dict[str, LockedPackage] = {}
    visited: set[tuple[str, tuple[str, ...]]] = set()
    pending: list[tuple[str, tuple[str, ...]]] = [(package, extras)]
    while pending:
        name, wanted_extras = pending.pop()
        if name in provided or (name, wanted_extras) in visited:
            continue
        visited.add((name, wanted_extras))
        entry = entry_of(name)
        dependencies = list(entry.get("dependencies", []))
        for extra in wanted_extras:
            optional = entry.get("optional-dependencies", {})
            if extra not in optional:
                raise LayerBuildError(f"uv.lock: {name} has no extra {extra!r}")
            dependencies += optional[extra]
        if name not in found:
            hashes = tuple(wheel["hash"] for wheel in entry.get("wheels", []))
            if not hashes:
                raise LayerBuildError(f"uv.lock: {name} {entry['version']} has no wheels with hashes")
            found[name] = LockedPackage(name, entry["version"], hashes)
        for dependency in dependencies:
            if "marker" in dependency:
                raise LayerBuildError(
                    f"uv.lock: {name} depends on {dependency['name']} under the marker "
                    f"{dependency['marker']!r}; decide by hand whether the layer needs it"
                )
            pending.append((dependency["name"], tuple(dependency.get("extra", ()))))
    return sorted(found.values(), key=lambda locked: locked.name)


def read_lock(lock_file: Path = LOCK_FILE) -> dict[str, Any]:
    with lock_file.open("rb") as handle:
        return tomllib.load(handle)


def requirements_text(packages: list[LockedPackage]) -> str:
    """A requirements file: exact versions with the lock's wheel hashes."""
    return "".join(f"{locked.requirement()}\n" for locked in packages)


def find_uv() -> str:
    """uv: ``$UV`` (set by ``uv run``), the project's ``.tools/bin/uv`` (``make setup``), or PATH."""
    candidates = [os.environ.get("UV"), str(REPO_ROOT / ".tools" / "bin" / "uv"), shutil.which("uv")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise LayerBuildError(
        "uv was not found ($UV, .tools/bin/uv, PATH); run `make setup` first, "
        "or pass your own powertools_layer to UsageQuotaMonitor"
    )


@jsii.implements(ILocalBundling)
class UvLayerBundling:
    """Installs the locked requirements into ``<output>/python``, the path Lambda puts on sys.path."""

    def __init__(self, requirements: str) -> None:
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        output = Path(output_dir)
        requirements_file = output.parent / f"{output.name}.requirements.txt"
        requirements_file.write_text(self._requirements, encoding="utf-8")
        command = [
            find_uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            sys.executable,  # only to satisfy uv; the target platform and version are below
            "--target",
            str(output / "python"),
            "--python-platform",
            PYTHON_PLATFORM,
            "--python-version",
            PYTHON_VERSION,
            "--only-binary",
            ":all:",
            "--no-deps",
            "--require-hashes",
            "--requirement",
            str(requirements_file),
        ]
        environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)  # noqa: S603 - fixed argv
        requirements_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise LayerBuildError(
                f"building the Powertools layer failed (uv exit {done.returncode}):\n{done.stderr.strip()}"
            )
        return True


def powertools_layer(scope: Construct, id_: str, *, lock_file: Path = LOCK_FILE) -> lambda_.LayerVersion:
    """A layer holding the locked ``aws-lambda-powertools[tracer]`` for python3.14 on arm64."""
    packages = locked_packages(read_lock(lock_file))
    requirements = requirements_text(packages)
    digest = hashlib.sha256(f"{PYTHON_PLATFORM} {PYTHON_VERSION}\n{requirements}".encode()).hexdigest()
    version = next(locked.version for locked in packages if locked.name == PACKAGE)
    return lambda_.LayerVersion(
        scope,
        id_,
        code=lambda_.Code.from_asset(
            # The source is not read (the hash is the requirements'); CDK only needs a directory.
            str(Path(__file__).resolve().parent),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=digest,
            bundling=BundlingOptions(
                # Never pulled: local bundling always answers (or raises, rather than fall back).
                image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                local=UvLayerBundling(requirements),
            ),
        ),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"Powertools for AWS Lambda (Python) {version} [tracer], from uv.lock",
        removal_policy=RemovalPolicy.DESTROY,
    )
