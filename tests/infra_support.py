"""Synthesizing the app the way ``cdk synth`` does (cdk.json's context, then ``-c`` overrides, then
app.build with cdk-nag on), and reading the template back in a form a test can compare exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

import app as cdk_app
from infra.stack import QuotaMonitorStack

REPO_ROOT = Path(__file__).resolve().parents[1]


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return context


@dataclass(frozen=True)
class Synthesized:
    stack: QuotaMonitorStack
    template: Template
    raw: dict[str, Any]
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.raw["Resources"]
        return resources

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: body for name, body in self.resources.items() if body["Type"] == type_}

    def one(self, type_: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.items()))

    def logical_id(self, path: str) -> str:
        """The logical id of the resource at construct path ``<stack>/<path>/Resource``."""
        wanted = f"{self.stack.stack_name}/{path}/Resource"
        for name, body in self.resources.items():
            if body.get("Metadata", {}).get("aws:cdk:path") == wanted:
                return name
        raise AssertionError(f"no resource at {wanted}")


def synthesize(outdir: Path, **context: str) -> Synthesized:
    """The app as ``cdk synth -c key=value ...`` builds it; raises if cdk-nag finds anything."""
    # What the CLI adds: construct paths and asset paths in the template's metadata.
    cli = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}
    app = App(outdir=str(outdir), context={**cdk_json_context(), **cli, **context})
    stack = cdk_app.build(app)
    assembly = app.synth()
    raw: dict[str, Any] = assembly.get_stack_by_name(stack.stack_name).template
    return Synthesized(stack=stack, template=Template.from_json(raw), raw=raw, outdir=outdir)


def warnings(synth: Synthesized) -> list[str]:
    """The warnings synthesis attached to the stack, read from the cloud assembly on disk.

    ``aws_cdk.assertions.Annotations`` would do the same through jsii, but its answer carries a
    type from a submodule jsii loads lazily, and under pytest-xdist that lookup has failed with
    "Unknown interface: aws-cdk-lib.cloud_assembly_schema.MetadataEntry". The manifest is the
    same data as plain JSON: in the stack artifact's ``metadata``, or (newer CDK releases) in the
    file its ``additionalMetadataFile`` names.
    """
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    artifact = manifest["artifacts"][synth.stack.artifact_id]
    sources: list[dict[str, list[dict[str, Any]]]] = [artifact.get("metadata", {})]
    if "additionalMetadataFile" in artifact:
        sources.append(json.loads((synth.outdir / artifact["additionalMetadataFile"]).read_text()))
    return [
        str(entry["data"])
        for metadata in sources
        for entries in metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]


def ref(logical_id: str) -> str:
    """How :func:`render` spells ``{"Ref": logical_id}``."""
    return "${" + logical_id + "}"


def att(logical_id: str, attribute: str = "Arn") -> str:
    """How :func:`render` spells ``{"Fn::GetAtt": [logical_id, attribute]}``."""
    return "${" + logical_id + "." + attribute + "}"


def render(value: Any) -> Any:
    """A template value with intrinsic functions spelled as text: ``{"Ref": "X"}`` -> ``"${X}"``,
    ``Fn::GetAtt [X, Arn]`` -> ``"${X.Arn}"``, ``Fn::Join`` joined. Lists and maps recursively."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return "${" + value["Ref"] + "}"
        if set(value) == {"Fn::GetAtt"}:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(render(part)) for part in parts)
        return {key: render(item) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item) for item in value]
    return value


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of an AWS::IAM::Policy resource, rendered, Action and Resource always lists."""
    rendered = []
    for statement in render(policy["Properties"]["PolicyDocument"]["Statement"]):
        for field in ("Action", "Resource"):
            if isinstance(statement.get(field), str):
                statement[field] = [statement[field]]
        rendered.append(statement)
    return rendered


def cfn_lint(raw: dict[str, Any]) -> list[str]:
    """cfn-lint's errors and warnings on a synthesized template, as ``cfn-lint`` reports by default.

    W3005 is ignored: CDK itself writes a DependsOn on a function's role that its GetAtt already
    implies (docs/aws-behaviour.md#tooling); it is no choice of this project.
    """
    from cfnlint.api import ManualArgs, lint  # noqa: PLC0415 - slow to import; only these tests need it

    matches = lint(
        json.dumps(raw),
        config=ManualArgs(regions=["us-east-1"], ignore_checks=["W3005"]),
    )
    return [f"{match.rule.id} {match.message} at {'/'.join(map(str, match.path))}" for match in matches]


def deployed(value: Any, raw: dict[str, Any], pseudo: dict[str, str]) -> Any:
    """A template value as CloudFormation would resolve it with these pseudo parameters
    (``{"AWS::Partition": "aws-cn", "AWS::Region": "cn-north-1"}``): conditions evaluated, ``Fn::If``
    chosen, ``Fn::Join`` joined; a ``Ref`` to a resource stays ``${LogicalId}``, an attribute
    ``${LogicalId.Attribute}``."""
    conditions = raw.get("Conditions", {})

    def condition(name: str) -> bool:
        return bool(resolve(conditions[name]))

    def resolve(item: Any) -> Any:
        if isinstance(item, list):
            return [resolve(part) for part in item]
        if not isinstance(item, dict):
            return item
        if set(item) == {"Ref"}:
            return pseudo.get(item["Ref"], "${" + item["Ref"] + "}")
        if set(item) == {"Fn::GetAtt"}:
            return "${" + ".".join(item["Fn::GetAtt"]) + "}"
        if set(item) == {"Condition"}:
            return condition(item["Condition"])
        if set(item) == {"Fn::Equals"}:
            first, second = resolve(item["Fn::Equals"])
            return first == second
        if set(item) == {"Fn::Or"}:
            return any(resolve(part) for part in item["Fn::Or"])
        if set(item) == {"Fn::If"}:
            name, then, otherwise = item["Fn::If"]
            return resolve(then if condition(name) else otherwise)
        if set(item) == {"Fn::Join"}:
            separator, parts = item["Fn::Join"]
            return separator.join(str(resolve(part)) for part in parts)
        return {key: resolve(part) for key, part in item.items()}

    return resolve(value)


def deployed_outputs(raw: dict[str, Any], pseudo: dict[str, str]) -> dict[str, Any]:
    """The stack's outputs as deployed with these pseudo parameters: those whose condition is false
    are left out."""
    outputs = {}
    for name, body in raw.get("Outputs", {}).items():
        if "Condition" in body and not deployed({"Condition": body["Condition"]}, raw, pseudo):
            continue
        outputs[name] = deployed(body["Value"], raw, pseudo)
    return outputs
