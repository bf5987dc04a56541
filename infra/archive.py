"""``UsageArchive``: the bucket the monitor archives its records to, and Athena over it with nothing to
run: no crawler, no ``MSCK REPAIR``, no partitions to add (docs/archive.md).

- The bucket (or an existing one, by name): S3-managed encryption, public access blocked, TLS 1.2 or
  later only (the bucket policy denies the rest), ACLs off, no versioning; ``records/`` moves to
  Glacier Instant Retrieval after ``cold_after_days`` and expires after ``retention_days``; Athena's
  results (``athena-results/``) expire after ``results_days``.
- A Glue database and one table over ``records/`` (the JSON SerDe; the columns of
  :mod:`infra.archive_queries`), partitioned by ``dt`` with partition projection: Athena computes the
  partitions from the query's ``dt`` predicate and the key layout, so a new day needs nothing.
- An Athena workgroup (engine version 3) whose settings are enforced: results to
  ``athena-results/`` in the bucket, SSE-S3, and a cap on the bytes a query may scan.
- The saved queries of :mod:`infra.archive_queries`.

The Glue and Athena resources hold no data and are deleted with the stack whatever
``removal_policy`` says (a retained database would stop the stack from being created again); the
policy applies to the bucket, which keeps the archive.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.archive_queries import (
    COLUMNS,
    NAMED_QUERIES,
    PARTITION_COLUMN,
    PROJECTION_START,
    TABLE_NAME,
    query_sql,
)
from infra.nag import acknowledge
from quota_monitor import ARCHIVE_PREFIX

if TYPE_CHECKING:
    from collections.abc import Mapping

RESULTS_PREFIX: Final = "athena-results/"
JSON_SERDE: Final = "org.openx.data.jsonserde.JsonSerDe"
ENGINE_VERSION: Final = "Athena engine version 3"
#: S3 keeps an object at least this long in Glacier Instant Retrieval (it bills the rest if deleted).
GLACIER_IR_MINIMUM_DAYS: Final = 90
#: The most a query may scan by default: $0.50 at Athena's $5 a TB, several years of a 10,000-key archive.
DEFAULT_SCAN_CUTOFF_GB: Final = 100
_GB: Final = 1024**3
#: Athena's floor for a workgroup's per-query cutoff (10 MB), in GB rounded up.
_MIN_SCAN_CUTOFF_GB: Final = 1


def _whole(
    name: str, value: int | None, *, low: int, high: int | None = None, unit: str = "days"
) -> int | None:
    """``value`` if it is a whole number of ``unit`` from ``low`` to ``high``, or None."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"a whole number of {unit} from {low}" + (f" to {high}" if high is not None else " up")
        raise ValueError(f"UsageArchive {name}={value!r} is not allowed: use {allowed}, or None for none")
    return value


def default_database_name(scope: Construct) -> str:
    """``<stack name>_quota_archive`` in Glue's alphabet (lowercase letters, digits, underscores)."""
    stem = re.sub(r"[^a-z0-9_]", "_", Stack.of(scope).stack_name.lower())
    return f"{stem[:230]}_quota_archive"


class UsageArchive(Construct):
    """The archive bucket, its Glue table and an Athena workgroup with the saved queries (module doc).

    ``bucket_name``: use this existing bucket instead of creating one; its lifecycle, encryption and
    policy are then its owner's (``cold_after_days`` and ``retention_days`` do not apply), and the
    workgroup's results go to its ``athena-results/``. ``cold_after_days`` and ``retention_days``:
    None keeps the records in S3 Standard, or forever.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket_name: str | None = None,
        cold_after_days: int | None = 90,
        retention_days: int | None = 800,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        results_days: int | None = 7,
        database_name: str | None = None,
        work_group_name: str | None = None,
        scan_cutoff_gb: int | None = DEFAULT_SCAN_CUTOFF_GB,
    ) -> None:
        super().__init__(scope, id_)
        cold = _whole("cold_after_days", cold_after_days, low=1)
        retention = _whole("retention_days", retention_days, low=1)
        if cold is not None and retention is not None and retention <= cold:
            raise ValueError(
                f"UsageArchive retention_days={retention} is not allowed with cold_after_days={cold}: the "
                f"records must expire after they move to Glacier Instant Retrieval (at least "
                f"{cold + GLACIER_IR_MINIMUM_DAYS} days avoids its early-deletion charge)"
            )
        results = _whole("results_days", results_days, low=1, high=365)
        cutoff = _whole(
            "scan_cutoff_gb", scan_cutoff_gb, low=_MIN_SCAN_CUTOFF_GB, high=1024 * 1024, unit="GB"
        )
        self.created = bucket_name is None
        self.bucket = (
            s3.Bucket.from_bucket_name(self, "Bucket", bucket_name)
            if bucket_name is not None
            else self._bucket(cold, retention, results, removal_policy)
        )
        self.database_name = database_name or default_database_name(self)
        self.work_group_name = work_group_name or f"{Stack.of(self).stack_name}-quota-archive"
        records_location = f"s3://{self.bucket.bucket_name}/{ARCHIVE_PREFIX}"

        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="apigw-quota-monitor: the archive of the monitor's records",
            ),
        )
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                description="Every record of every archived run: key, plan and target records (column "
                "record), one JSON line each; dt is the run's UTC date",
                table_type="EXTERNAL_TABLE",
                parameters=self._table_parameters(),
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_COLUMN, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=records_location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    compressed=True,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=JSON_SERDE,
                        # The records' keys are camelCase; Athena's columns are lowercase.
                        parameters={"case.insensitive": "true", "ignore.malformed.json": "false"},
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name.lower(), type=type_) for name, type_ in COLUMNS
                    ],
                ),
            ),
        )
        self.table.add_resource_dependency(self.database)

        self.work_group = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.work_group_name,
            description="apigw-quota-monitor: queries over the archive of the monitor's records",
            state="ENABLED",
            # The workgroup keeps its saved queries and history: deleting the stack deletes them too.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=None if cutoff is None else cutoff * _GB,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version=ENGINE_VERSION
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.bucket.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        self.named_queries = []
        for index, query in enumerate(NAMED_QUERIES):
            named = athena.CfnNamedQuery(
                self,
                f"Query{index}",
                name=query.name,
                description=query.description,
                database=self.database_name,
                query_string=query_sql(query, database=self.database_name),
                work_group=self.work_group.ref,
            )
            named.add_resource_dependency(self.table)
            self.named_queries.append(named)

    def _bucket(
        self, cold: int | None, retention: int | None, results: int | None, removal_policy: RemovalPolicy
    ) -> s3.Bucket:
        transitions = (
            [
                s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=Duration.days(cold),
                )
            ]
            if cold is not None
            else None
        )
        records_rule = s3.LifecycleRule(
            id="RecordsColdThenExpire",
            prefix=ARCHIVE_PREFIX,
            transitions=transitions,
            expiration=Duration.days(retention) if retention is not None else None,
        )
        rules = [
            *([records_rule] if transitions or retention is not None else []),
            s3.LifecycleRule(
                id="AthenaResultsExpire",
                prefix=RESULTS_PREFIX,
                expiration=Duration.days(results) if results is not None else None,
            ),
            s3.LifecycleRule(
                id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(1)
            ),
        ]
        bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            lifecycle_rules=rules,
            removal_policy=removal_policy,
        )
        acknowledge(
            bucket,
            "S1",
            "No server access logs: the archive is itself a log, written by one role (s3:PutObject on "
            "records/ only) and read by Athena and the statement. A log bucket would take a log object "
            "per request, several times the archive's own objects, for no question the records do not "
            "answer; CloudTrail data events audit the bucket where an audit is needed (docs/archive.md).",
        )
        return bucket

    def _table_parameters(self) -> Mapping[str, str]:
        """Partition projection on ``dt`` (a day, from the first day of the projection to today)."""
        return {
            "classification": "json",
            "compressionType": "gzip",
            "projection.enabled": "true",
            f"projection.{PARTITION_COLUMN}.type": "date",
            f"projection.{PARTITION_COLUMN}.format": "yyyy-MM-dd",
            f"projection.{PARTITION_COLUMN}.range": f"{PROJECTION_START},NOW",
            f"projection.{PARTITION_COLUMN}.interval": "1",
            f"projection.{PARTITION_COLUMN}.interval.unit": "DAYS",
            # ${!dt} is Fn::Sub's spelling of a literal ${dt}, which Athena fills in for each day.
            "storage.location.template": Fn.sub(
                f"s3://${{Bucket}}/{ARCHIVE_PREFIX}{PARTITION_COLUMN}=${{!{PARTITION_COLUMN}}}/",
                {"Bucket": self.bucket.bucket_name},
            ),
        }

    def grant_write(self, grantee: iam.IGrantable) -> None:
        """``s3:PutObject`` on ``records/*``, and nothing else: the monitor writes its records there and
        can neither read, list, delete nor overwrite anything outside that prefix."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ArchiveRecords",
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")],
            )
        )
        self._acknowledge_objects(
            grantee,
            "s3:PutObject on every object under records/: each run writes new objects whose names hold "
            "the run's time, which no policy can list in advance. Write only, on that prefix only.",
        )

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """What ``quota-monitor statement`` needs: list ``records/`` and read its objects."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListArchive",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{ARCHIVE_PREFIX}*"]}},
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadArchive",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{ARCHIVE_PREFIX}*")],
            )
        )
        self._acknowledge_objects(
            grantee,
            "s3:GetObject on the objects under records/: a statement reads the runs of the days it "
            "covers, whose names hold each run's time. Read only, on that prefix only.",
        )

    def _acknowledge_objects(self, grantee: iam.IGrantable, reason: str) -> None:
        principal = grantee.grant_principal
        if isinstance(principal, Construct):
            acknowledge(principal, f"IAM5[Resource::{self._nag_objects_arn()}]", reason)

    def _nag_objects_arn(self) -> str:
        """``records/*``'s ARN as cdk-nag spells it in a finding."""
        if self.created:
            bucket = self.bucket.node.default_child
            assert isinstance(bucket, s3.CfnBucket)  # an L2 Bucket's default child
            return f"<{Stack.of(self).get_logical_id(bucket)}.Arn>/{ARCHIVE_PREFIX}*"
        name = self.bucket.bucket_name
        assert not Token.is_unresolved(name), "an imported bucket is named by a plain string"
        return f"arn:<AWS::Partition>:s3:::{name}/{ARCHIVE_PREFIX}*"
