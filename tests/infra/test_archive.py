"""``UsageArchive`` on its own, in a bare stack beside a function granted to write: the bucket's safety
and lifecycle, exactly what the writer may do, the Glue table with partition projection, the Athena
workgroup and the saved queries, with cdk-nag's AwsSolutions checks on and cfn-lint clean."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks

from infra.archive import UsageArchive
from infra.archive_queries import COLUMNS, NAMED_QUERIES, query_sql
from infra.functions import FunctionSpec, python_function
from quota_monitor import KEY_RECORD_FIELDS, PLAN_RECORD_FIELDS, TARGET_RECORD_FIELDS
from tests.infra_support import att, cfn_lint, ref, render, statements

pytestmark = pytest.mark.synth

LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:powertools:1"


@dataclass(frozen=True)
class Built:
    archive: UsageArchive
    raw: dict[str, Any]

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: body for name, body in self.raw["Resources"].items() if body["Type"] == type_}

    def one(self, type_: str) -> tuple[str, dict[str, Any]]:
        (found,) = self.of_type(type_).items()
        return found

    def logical_id(self, construct: Any) -> str:
        return str(Stack.of(self.archive).get_logical_id(construct.node.default_child))


def build(tmp_path: Path, *, grant_read: bool = False, **options: Any) -> Built:
    """The construct and a function granted to write, synthesized with cdk-nag on (a finding without
    an acknowledgement fails the synth)."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bare", env={"account": "123456789012", "region": "us-east-1"})
    archive = UsageArchive(stack, "Archive", **options)
    function = python_function(
        stack,
        "Fn",
        spec=FunctionSpec(
            handler="quota_monitor.handler.handler",
            description="writes the archive",
            environment={"ARCHIVE_BUCKET": archive.bucket.bucket_name},
            timeout=Duration.seconds(60),
            memory_mb=256,
            retry_attempts=1,
            max_event_age=Duration.minutes(15),
            dead_letter_queue=None,
        ),
        layer=lambda_.LayerVersion.from_layer_version_arn(stack, "Layer", LAYER_ARN),
        log_retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    archive.grant_write(function)
    if grant_read:
        archive.grant_read(iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal()))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    raw: dict[str, Any] = app.synth().get_stack_by_name("Bare").template
    return Built(archive, raw)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("archive"))


def test_the_bucket_is_encrypted_private_tls_only_unversioned_and_ages_its_records(built: Built) -> None:
    name, bucket = built.one("AWS::S3::Bucket")
    properties = bucket["Properties"]
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "VersioningConfiguration" not in properties
    assert properties["LifecycleConfiguration"]["Rules"] == [
        {
            "Id": "RecordsColdThenExpire",
            "Prefix": "records/",
            "Status": "Enabled",
            "Transitions": [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}],
            "ExpirationInDays": 800,
        },
        {
            "Id": "AthenaResultsExpire",
            "Prefix": "athena-results/",
            "Status": "Enabled",
            "ExpirationInDays": 7,
        },
        {
            "Id": "AbortIncompleteUploads",
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        },
    ]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    # The bucket policy refuses plain HTTP and TLS before 1.2, to everyone, on the bucket and objects.
    _, policy = built.one("AWS::S3::BucketPolicy")
    denials = render(policy["Properties"]["PolicyDocument"]["Statement"])
    assert [(d["Effect"], d["Action"], d["Condition"]) for d in denials] == [
        ("Deny", "s3:*", {"Bool": {"aws:SecureTransport": "false"}}),
        ("Deny", "s3:*", {"NumericLessThan": {"s3:TlsVersion": 1.2}}),
    ]
    assert all(d["Resource"] == [att(name), att(name) + "/*"] for d in denials)
    assert all(d["Principal"] == {"AWS": "*"} for d in denials)


def test_the_writer_may_put_objects_under_records_and_nothing_else(built: Built) -> None:
    bucket = built.logical_id(built.archive.bucket)
    (policy,) = built.of_type("AWS::IAM::Policy").values()
    granted = [s for s in statements(policy) if s.get("Sid") != "WriteOwnLogs"]
    assert granted == [
        {
            "Sid": "ArchiveRecords",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [att(bucket) + "/records/*"],
        }
    ]


def test_the_table_reads_every_record_field_with_partition_projection_on_dt(built: Built) -> None:
    bucket = built.logical_id(built.archive.bucket)
    _, table = built.one("AWS::Glue::Table")
    _, database = built.one("AWS::Glue::Database")
    properties = render(table["Properties"])
    assert (
        properties["DatabaseName"] == database["Properties"]["DatabaseInput"]["Name"] == "bare_quota_archive"
    )
    assert table["DependsOn"] == [Stack.of(built.archive).get_logical_id(built.archive.database)]
    table_input = properties["TableInput"]
    assert table_input["Name"] == "records"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    assert table_input["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    parameters = table_input["Parameters"]
    assert {name: value for name, value in parameters.items() if name != "storage.location.template"} == {
        "classification": "json",
        "compressionType": "gzip",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2026-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
    }
    # ${!dt} is how Fn::Sub writes a literal ${dt}: Athena fills in each day.
    assert table["Properties"]["TableInput"]["Parameters"]["storage.location.template"] == {
        "Fn::Sub": ["s3://${Bucket}/records/dt=${!dt}/", {"Bucket": {"Ref": bucket}}]
    }
    storage = table_input["StorageDescriptor"]
    assert storage["Location"] == f"s3://{ref(bucket)}/records/"
    assert storage["SerdeInfo"] == {
        "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
        "Parameters": {"case.insensitive": "true", "ignore.malformed.json": "false"},
    }
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    # One wide table: every field of every kind of record, once, lowercase as Athena keeps them.
    every_field = dict.fromkeys((*KEY_RECORD_FIELDS, *PLAN_RECORD_FIELDS, *TARGET_RECORD_FIELDS))
    assert [column["Name"] for column in storage["Columns"]] == [name.lower() for name in every_field]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [(n.lower(), t) for n, t in COLUMNS]
    types = {c["Name"]: c["Type"] for c in storage["Columns"]}
    assert (types["used"], types["limit"], types["utilization"], types["levels"]) == (
        "bigint",
        "bigint",
        "double",
        "array<int>",
    )


def test_the_workgroup_enforces_encrypted_results_in_the_bucket_and_holds_the_saved_queries(
    built: Built,
) -> None:
    bucket = built.logical_id(built.archive.bucket)
    name, workgroup = built.one("AWS::Athena::WorkGroup")
    properties = render(workgroup["Properties"])
    assert properties["Name"] == "Bare-quota-archive"
    assert properties["RecursiveDeleteOption"] is True
    assert properties["WorkGroupConfiguration"] == {
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "BytesScannedCutoffPerQuery": 100 * 1024**3,
        "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
        "ResultConfiguration": {
            "OutputLocation": f"s3://{ref(bucket)}/athena-results/",
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        },
    }
    queries = sorted(
        (render(body["Properties"]) for body in built.of_type("AWS::Athena::NamedQuery").values()),
        key=lambda query: str(query["Name"]),
    )
    assert queries == sorted(
        (
            {
                "Name": query.name,
                "Description": query.description,
                "Database": "bare_quota_archive",
                "QueryString": query_sql(query, database="bare_quota_archive"),
                "WorkGroup": ref(name),
            }
            for query in NAMED_QUERIES
        ),
        key=lambda query: str(query["Name"]),
    )
    assert [q.name for q in NAMED_QUERIES] == [
        "Quota statement of a period",
        "Quota top keys of a month",
        "Quota daily trend of a plan",
        "Quota keys that reached their limit",
    ]


def test_the_template_is_cfn_lint_clean(built: Built) -> None:
    assert cfn_lint(built.raw) == []


def test_an_existing_bucket_is_used_by_name_and_the_grants_name_it(tmp_path: Path) -> None:
    imported = build(
        tmp_path,
        bucket_name="my-archive",
        grant_read=True,
        removal_policy=RemovalPolicy.DESTROY,
        database_name="quota",
        work_group_name="quota",
    )
    assert imported.of_type("AWS::S3::Bucket") == {}
    assert imported.of_type("AWS::S3::BucketPolicy") == {}
    policies = {
        name: [s for s in statements(body) if s.get("Sid") != "WriteOwnLogs"]
        for name, body in imported.of_type("AWS::IAM::Policy").items()
    }
    objects = "arn:${AWS::Partition}:s3:::my-archive/records/*"
    assert sorted(policies.values(), key=len) == [
        [{"Sid": "ArchiveRecords", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [objects]}],
        [
            {
                "Sid": "ListArchive",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:${AWS::Partition}:s3:::my-archive"],
                "Condition": {"StringLike": {"s3:prefix": ["records/*"]}},
            },
            {"Sid": "ReadArchive", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [objects]},
        ],
    ]
    _, table = imported.one("AWS::Glue::Table")
    storage = table["Properties"]["TableInput"]["StorageDescriptor"]
    assert storage["Location"] == "s3://my-archive/records/"
    _, workgroup = imported.one("AWS::Athena::WorkGroup")
    assert workgroup["Properties"]["Name"] == "quota"
    assert cfn_lint(imported.raw) == []


def test_no_expiry_and_no_cold_storage_can_be_chosen_and_the_policy_applies_to_the_bucket(
    tmp_path: Path,
) -> None:
    kept = build(
        tmp_path,
        cold_after_days=None,
        retention_days=None,
        removal_policy=RemovalPolicy.DESTROY,
        scan_cutoff_gb=None,
    )
    _, bucket = kept.one("AWS::S3::Bucket")
    assert [rule["Id"] for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]] == [
        "AthenaResultsExpire",
        "AbortIncompleteUploads",
    ]
    assert bucket["DeletionPolicy"] == "Delete"
    _, workgroup = kept.one("AWS::Athena::WorkGroup")
    assert "BytesScannedCutoffPerQuery" not in workgroup["Properties"]["WorkGroupConfiguration"]
    # Glue and Athena hold no data: deleted with the stack whatever the bucket's policy.
    for type_ in ("AWS::Glue::Database", "AWS::Glue::Table", "AWS::Athena::WorkGroup"):
        assert "DeletionPolicy" not in kept.one(type_)[1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"cold_after_days": 0},
            "UsageArchive cold_after_days=0 is not allowed: use a whole number of days from 1 up, "
            "or None for none",
        ),
        ({"retention_days": -5}, "UsageArchive retention_days=-5 is not allowed: use a whole number of days"),
        (
            {"cold_after_days": 90, "retention_days": 90},
            "UsageArchive retention_days=90 is not allowed with cold_after_days=90: the records must expire "
            "after they move to Glacier Instant Retrieval (at least 180 days",
        ),
        (
            {"results_days": 0},
            "UsageArchive results_days=0 is not allowed: use a whole number of days from 1 to 365",
        ),
        (
            {"scan_cutoff_gb": 0},
            "UsageArchive scan_cutoff_gb=0 is not allowed: use a whole number of GB from 1 to 1048576",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_option_the_value_and_what_is_allowed(
    options: dict[str, Any], message: str
) -> None:
    stack = Stack(App(), "Bare")
    with pytest.raises(ValueError, match="UsageArchive") as raised:
        UsageArchive(stack, "Archive", **options)
    assert message in str(raised.value)
