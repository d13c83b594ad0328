"""Static checks of the AWS deployment (infra/terraform) and of the Dockerfile. No AWS account needed.

1. Every .tf file is parsed with python-hcl2 and checked for what the deployment promises: the
   variables and outputs (each described and typed), encryption and public-access blocks on every
   bucket (all made by modules/s3-bucket), encrypted private RDS, the app's environment, retention
   matching the bucket's lifecycle. The same parse lints the configuration and its module for what
   tflint's recommended rules check (tflint itself ships in no package registry reachable here).
2. checkov scans the folder (terraform and secrets) and the Dockerfile and must report zero failed
   checks; every skip is an inline `#checkov:skip=CKV_...:reason` and must carry its reason. checkov lives in its own virtual
   environment (<repo>/.venv-tools, made by `make install`) because its pins would downgrade the
   app's packages; a missing checkov fails the test, it never skips it.
3. Where Terraform and a local copy of the AWS provider exist (a provider cannot be downloaded here),
   `terraform fmt -check`, `validate` and `test` (offline applies against a mocked provider,
   infra/terraform/tests/) run too; without them those three tests are skipped and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.terraform

try:
    import hcl2
except ImportError as exc:  # pragma: no cover - a broken dev install
    raise ImportError("python-hcl2 is missing: it is a dev dependency, run `make install`") from exc

REPO = Path(__file__).resolve().parent.parent
TF_DIR = REPO / "infra" / "terraform"
S3_MODULE_DIR = TF_DIR / "modules" / "s3-bucket"
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"
TF_PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))

# What an operator must set; everything else has a default.
VARIABLES_WITHOUT_DEFAULT = {"aws_region", "certificate_arn", "image_tag"}
REQUIRED_VARIABLES = VARIABLES_WITHOUT_DEFAULT | {
    "name",
    "environment",
    "tags",
    "vpc_cidr",
    "availability_zones",
    "single_nat_gateway",
    "alb_ingress_cidrs",
    "alb_deletion_protection",
    "enable_waf",
    "enable_access_logs",
    "api_command",
    "worker_command",
    "beat_command",
    "api_cpu",
    "api_memory",
    "api_min_count",
    "api_max_count",
    "api_cpu_target",
    "worker_cpu",
    "worker_memory",
    "worker_min_count",
    "worker_max_count",
    "worker_backlog_per_task_target",
    "app_environment",
    "log_retention_days",
    "media_retention_days",
    "s3_object_prefixes",
    "s3_expiring_prefixes",
    "sqs_visibility_timeout_seconds",
    "db_instance_class",
    "db_engine_version",
    "db_multi_az",
    "db_backup_retention_days",
    "db_iam_auth",
    "db_deletion_protection",
    "redis_node_type",
    "redis_multi_az",
    "alarm_emails",
}
REQUIRED_OUTPUTS = {
    "alb_dns_name",
    "alb_zone_id",
    "s3_bucket",
    "sqs_queue_url",
    "sqs_dlq_url",
    "rds_endpoint",
    "redis_endpoint",
    "ecr_repository_url",
    "container_image",
    "image_tag",
    "ecs_cluster_name",
    "api_service_name",
    "worker_service_name",
    "beat_service_name",
    "secret_arns",
    "kms_key_arn",
    "alarm_topic_arn",
    "media_retention_hours",
}
# The app's configuration on AWS (README); the secrets among them come from Secrets Manager only.
APP_SECRETS = {"DATABASE_URL", "REDIS_URL", "EMOSCOPE_API_KEY_PEPPER", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"}
APP_ENVIRONMENT = APP_SECRETS | {
    "S3_BUCKET",
    "SQS_QUEUE_URL",
    "EMOSCOPE_MEDIA_RETENTION_HOURS",
    "S3_KMS_KEY_ID",
    "CELERY_BROKER_URL",
}
API_COMMAND = ["gunicorn", "-c", "gunicorn.conf.py", "api.web.app:create_app()"]


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _unquote(value: str) -> str:
    # python-hcl2 8 keeps the quotes of string literals and block labels; older releases did not.
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _clean(node):
    if isinstance(node, dict):
        # python-hcl2 8 adds markers such as __is_block__ and __comments__.
        return {_unquote(k): _clean(v) for k, v in node.items() if not (k.startswith("__") and k.endswith("__"))}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def _block(value):
    """A nested block parses as a list of one dict in some python-hcl2 releases and a dict in others."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


class Config:
    def __init__(self, files: dict[str, dict]):
        self.files = files
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.locals: dict[str, object] = {}
        self.modules: dict[str, dict] = {}
        self.moved: list[dict] = []
        self.terraform: list[dict] = []
        for parsed in files.values():
            for entry in parsed.get("variable", []):
                self.variables.update(entry)
            for entry in parsed.get("output", []):
                self.outputs.update(entry)
            for entry in parsed.get("module", []):
                self.modules.update(entry)
            self.moved.extend(parsed.get("moved", []))
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for entry in parsed.get(kind, []):
                    for rtype, named in entry.items():
                        for rname, body in named.items():
                            assert (rtype, rname) not in target, f"{rtype}.{rname} defined twice"
                            target[(rtype, rname)] = body
            for entry in parsed.get("locals", []):
                for key, value in entry.items():
                    assert key not in self.locals, f"local.{key} defined twice"
                    self.locals[key] = value
            self.terraform.extend(parsed.get("terraform", []))

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}


def _parse(directory: Path) -> Config:
    paths = sorted(directory.glob("*.tf"))
    assert paths, f"no .tf files in {directory}"
    files = {}
    for path in paths:
        with path.open() as handle:
            files[path.name] = _clean(hcl2.load(handle))
    return Config(files)


@pytest.fixture(scope="module")
def tf() -> Config:
    return _parse(TF_DIR)


@pytest.fixture(scope="module")
def s3_module() -> Config:
    return _parse(S3_MODULE_DIR)


def _bucket_of(body: dict) -> str:
    """Name of the aws_s3_bucket that a bucket-level resource's `bucket` argument refers to."""
    match = re.fullmatch(r"\$\{aws_s3_bucket\.(\w+)(\[0\])?\.(id|bucket)\}", body["bucket"])
    assert match, f"bucket argument {body['bucket']!r} does not reference an aws_s3_bucket"
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# HCL checks
# ---------------------------------------------------------------------------------------------


def test_layout_and_versions(tf, s3_module):
    # The root and the module alike (tflint's terraform_standard_module_structure, required_version
    # and required_providers).
    for config in (tf, s3_module):
        assert {"versions.tf", "variables.tf", "main.tf", "outputs.tf"} <= set(config.files)
        (terraform,) = config.terraform
        assert terraform["required_version"] == ">= 1.6"
        aws = _block(terraform["required_providers"])["aws"]
        assert aws["source"] == "hashicorp/aws"
        assert re.fullmatch(r"~> 5\.\d+", aws["version"]), aws["version"]
    assert (S3_MODULE_DIR / "README.md").is_file()


def test_variables_are_described_and_typed(tf, s3_module):
    missing = REQUIRED_VARIABLES - set(tf.variables)
    assert not missing, f"variables missing: {sorted(missing)}"
    for config in (tf, s3_module):
        for name, body in config.variables.items():
            assert str(body.get("description", "")).strip(), f"variable {name} has no description"
            assert body.get("type"), f"variable {name} has no type"
    without_default = {name for name, body in tf.variables.items() if "default" not in body}
    assert without_default == VARIABLES_WITHOUT_DEFAULT


def test_outputs_are_described(tf, s3_module):
    missing = REQUIRED_OUTPUTS - set(tf.outputs)
    assert not missing, f"outputs missing: {sorted(missing)}"
    for config in (tf, s3_module):
        for name, body in config.outputs.items():
            assert str(body.get("description", "")).strip(), f"output {name} has no description"


def test_every_bucket_is_encrypted_private_versioned_and_expiring(tf, s3_module):
    # Every bucket is made by the module, which gives each one all of the settings below.
    assert not [key for key in tf.resources if key[0].startswith("aws_s3_bucket")], "a bucket outside modules/s3-bucket"
    buckets = {name for name, call in tf.modules.items() if call["source"] == "./modules/s3-bucket"}
    assert {"media_bucket", "logs_bucket"} <= buckets
    assert set(s3_module.of_type("aws_s3_bucket")) == {"this"}

    def of_the_bucket(rtype):
        (body,) = s3_module.of_type(rtype).values()
        assert _bucket_of(body) == "this", rtype
        return body

    encryption = _block(
        _block(of_the_bucket("aws_s3_bucket_server_side_encryption_configuration")["rule"])[
            "apply_server_side_encryption_by_default"
        ]
    )
    assert encryption["sse_algorithm"] == "${var.sse_algorithm}"
    (allowed,) = s3_module.variables["sse_algorithm"]["validation"]
    assert allowed["condition"] == '${contains(["aws:kms", "AES256"], var.sse_algorithm)}'
    public_access = of_the_bucket("aws_s3_bucket_public_access_block")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert public_access[flag] is True, f"{flag} is not true"
    assert _block(of_the_bucket("aws_s3_bucket_versioning")["versioning_configuration"])["status"] == "Enabled"
    assert (
        of_the_bucket("aws_s3_bucket_lifecycle_configuration")["dynamic"][0]["rule"]["for_each"]
        == "${var.lifecycle_rules}"
    )
    # No bucket keeps incomplete uploads (CKV_AWS_300, which checkov cannot evaluate on the dynamic rules).
    (aborts,) = s3_module.variables["lifecycle_rules"]["validation"]
    assert "rule.abort_incomplete_multipart_upload_days != null" in aborts["condition"]
    policy = of_the_bucket("aws_s3_bucket_policy")
    assert policy["policy"] == "${data.aws_iam_policy_document.this.json}"
    # TLS only, unconditionally (a plain statement, not a dynamic one).
    statements = s3_module.data[("aws_iam_policy_document", "this")]["statement"]
    assert any(
        s["sid"] == "DenyInsecureTransport"
        and s["effect"] == "Deny"
        and s["actions"] == ["s3:*"]
        and _block(s["condition"]) == {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
        for s in statements
    )

    # User media: the customer managed key, whose use the policy then enforces.
    media = tf.modules["media_bucket"]
    assert media["sse_algorithm"] == "aws:kms" and media["kms_key_arn"] == "${aws_kms_key.this.arn}"
    # The log bucket cannot use it (AWS log deliveries write only SSE-S3), and is the only one without it.
    assert tf.modules["logs_bucket"]["sse_algorithm"] == "AES256"
    assert all(tf.modules[name].get("sse_algorithm") == "aws:kms" for name in buckets - {"logs_bucket"})


def test_media_expires_after_the_retention_the_app_is_told(tf):
    assert tf.variables["media_retention_days"]["default"] == 1
    rules = tf.modules["media_bucket"]["lifecycle_rules"]
    # Only the expiring prefixes expire, each after the retention; nothing expires bucket-wide.
    expiring = re.search(r"\[for prefix in toset\(var\.s3_expiring_prefixes\) : \{(.*?)\}\]", rules)
    assert expiring, rules
    assert "prefix = prefix" in expiring.group(1)
    assert "expiration_days = var.media_retention_days" in expiring.group(1)
    assert len(re.findall(r"\bexpiration_days\b", rules)) == 1
    # Study stimuli are written by the task roles and kept until their study is deleted.
    assert "studies/" in tf.variables["s3_object_prefixes"]["default"]
    assert "studies/" not in tf.variables["s3_expiring_prefixes"]["default"]
    hours = tf.locals["app_environment"]["EMOSCOPE_MEDIA_RETENTION_HOURS"]
    assert "var.media_retention_days * 24" in hours


def test_rds_is_encrypted_private_and_backed_up(tf):
    (db,) = tf.of_type("aws_db_instance").values()
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert db["publicly_accessible"] is False
    assert db["performance_insights_enabled"] is True
    assert db["performance_insights_kms_key_id"] == "${aws_kms_key.this.arn}"
    assert db["multi_az"] == "${var.db_multi_az}"
    assert db["backup_retention_period"] == "${var.db_backup_retention_days}"
    assert db["deletion_protection"] == "${var.db_deletion_protection}"
    assert tf.variables["db_deletion_protection"]["default"] is True
    assert db["iam_database_authentication_enabled"] == "${var.db_iam_auth}"
    assert db["skip_final_snapshot"] is False


def test_everything_else_is_encrypted(tf):
    key = "${aws_kms_key.this.arn}"
    (kms,) = tf.of_type("aws_kms_key").values()
    assert kms["enable_key_rotation"] is True
    queues = tf.of_type("aws_sqs_queue")
    assert set(queues) == {"jobs", "jobs_dlq"}
    assert all(q["kms_master_key_id"] == key for q in queues.values())
    assert "jobs_dlq" in queues["jobs"]["redrive_policy"]
    assert all(t["kms_master_key_id"] == key for t in tf.of_type("aws_sns_topic").values())
    for name, group in tf.of_type("aws_cloudwatch_log_group").items():
        assert group["kms_key_id"] == key and group["retention_in_days"], f"log group {name}"
    assert all(s["kms_key_id"] == key for s in tf.of_type("aws_secretsmanager_secret").values())
    (redis,) = tf.of_type("aws_elasticache_replication_group").values()
    assert redis["at_rest_encryption_enabled"] is True and redis["transit_encryption_enabled"] is True
    assert redis["kms_key_id"] == key
    assert 'aws_secretsmanager_secret_version.generated["redis_auth_token"]' in redis["auth_token"]


def test_load_balancer_is_https_only(tf):
    (alb,) = tf.of_type("aws_lb").values()
    assert alb["drop_invalid_header_fields"] is True
    listeners = tf.of_type("aws_lb_listener")
    redirect = _block(_block(listeners["http"]["default_action"])["redirect"])
    assert (redirect["protocol"], redirect["port"], redirect["status_code"]) == ("HTTPS", "443", "HTTP_301")
    assert listeners["https"]["protocol"] == "HTTPS"
    assert listeners["https"]["certificate_arn"] == "${var.certificate_arn}"


def test_app_gets_its_environment_and_secrets_only_from_secrets_manager(tf):
    environment = tf.locals["app_environment"]
    secrets = tf.locals["app_secrets"]
    assert APP_ENVIRONMENT <= set(environment) | set(secrets)
    assert set(secrets) == APP_SECRETS
    assert not APP_SECRETS & set(environment), "a secret is passed as a plain environment variable"
    assert all("aws_secretsmanager_secret.this" in arn for arn in secrets.values())
    containers = tf.locals["containers"]
    assert set(containers) == {"api", "worker", "beat"}
    assert tf.variables["api_command"]["default"] == API_COMMAND
    # The Celery app is api/wiring/worker.py; its beat schedule runs in exactly one task.
    assert tf.variables["worker_command"]["default"][:4] == ["celery", "-A", "api.wiring.worker", "worker"]
    assert tf.variables["beat_command"]["default"][:4] == ["celery", "-A", "api.wiring.worker", "beat"]
    assert (REPO / "api" / "wiring" / "worker.py").is_file()


def test_api_task_puts_nginx_in_front_of_gunicorn_on_loopback(tf):
    api = tf.locals["containers"]["api"]
    assert api["environment"]["EMOSCOPE_BIND"] == "127.0.0.1:${var.gunicorn_port}"
    assert api["port_mappings"] == []
    proxy = tf.locals["proxy_container"]
    assert proxy["command"] == ["python", "-m", "api.web.proxy"]
    assert proxy["portMappings"] == [{"containerPort": "${var.api_port}", "protocol": "tcp"}]
    assert not proxy.get("secrets"), "nginx needs no secrets"
    service = tf.of_type("aws_ecs_service")["api"]
    assert _block(service["load_balancer"])["container_name"] == "proxy"


def test_autoscaling_api_on_cpu_worker_on_queue_depth(tf):
    policies = tf.of_type("aws_appautoscaling_policy")
    api = _block(policies["api_cpu"]["target_tracking_scaling_policy_configuration"])
    assert _block(api["predefined_metric_specification"])["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"
    worker = _block(policies["worker_backlog"]["target_tracking_scaling_policy_configuration"])
    metrics = _block(worker["customized_metric_specification"])["metrics"]
    names = [_block(_block(m["metric_stat"])["metric"])["metric_name"] for m in metrics if "metric_stat" in m]
    assert "ApproximateNumberOfMessagesVisible" in names


def test_alarms_cover_the_promised_signals(tf):
    alarms = tf.of_type("aws_cloudwatch_metric_alarm")
    assert alarms["this"]["for_each"] == "${local.alarms}"
    metrics = {body["metric_name"] for body in tf.locals["alarms"].values()}
    assert {
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
        "CPUUtilization",
        "FreeStorageSpace",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
    } <= metrics
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == "${local.alarm_actions}", f"alarm {name} notifies nobody"
        assert alarm["ok_actions"] == "${local.alarm_actions}", f"alarm {name} does not say it recovered"


def test_task_roles_are_scoped(tf, s3_module):
    """Only the actions AWS cannot scope to a resource may use "*"."""
    unscopable = {
        "ecr:GetAuthorizationToken",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
    for (rtype, name), body in (tf.data | s3_module.data).items():
        if rtype != "aws_iam_policy_document":
            continue
        for statement in body.get("statement", []):
            resources = statement.get("resources", [])
            resources = [resources] if isinstance(resources, str) else resources  # a `for` expression
            if statement.get("effect", "Allow") == "Allow" and "*" in resources:
                assert set(statement["actions"]) <= unscopable, f"{name}: {statement['actions']} on *"


# ---------------------------------------------------------------------------------------------
# Lint: the rules of tflint's "recommended" preset that apply here, and its naming and module
# structure rules. tflint is a Go binary that no PyPI, npm or Debian package ships, and its AWS
# ruleset would be downloaded from GitHub by `tflint --init`, which cannot reach it; `terraform
# validate` (below) covers what the AWS ruleset adds: invalid values the provider's schema rejects.
# Variables, outputs, types and versions are checked above for the module too.
# ---------------------------------------------------------------------------------------------

SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines without comments (whole-line, or after code outside a string)."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        in_string = False
        for index, char in enumerate(line):
            if char == '"' and (index == 0 or line[index - 1] != "\\"):
                in_string = not in_string
            elif char == "#" and not in_string:
                line = line[:index]
                break
        lines.append((number, line))
    return lines


@pytest.mark.parametrize("directory", [TF_DIR, S3_MODULE_DIR], ids=["root", "s3-bucket"])
def test_lint(directory):
    config = _parse(directory)
    files = {path.name: _code_lines(path) for path in sorted(directory.glob("*.tf"))}
    code = "\n".join(line for lines in files.values() for _, line in lines)
    problems = []

    def problem(rule, message):
        problems.append(f"{directory.relative_to(REPO)}: {rule}: {message}")

    # terraform_unused_declarations: a variable, local or data source that nothing reads, unless the
    # line above it says why, as tflint's annotation does: `# tflint-ignore: RULE (reason)`.
    raw = "\n".join(path.read_text() for path in sorted(directory.glob("*.tf")))
    ignored = re.compile(r"# tflint-ignore: terraform_unused_declarations \(.{20,}\)\n")
    for name in config.variables:
        if not re.search(rf"\bvar\.{name}\b", code):
            problem("terraform_unused_declarations", f"variable {name} is declared but not used")
    for name in config.locals:
        if not re.search(rf"\blocal\.{name}\b", code):
            problem("terraform_unused_declarations", f"local.{name} is declared but not used")
    for rtype, name in config.data:
        used = re.search(rf"\bdata\.{rtype}\.{name}\b", code)
        if not used and not re.search(ignored.pattern + rf'data "{rtype}" "{name}"', raw):
            problem("terraform_unused_declarations", f"data.{rtype}.{name} is declared but not used")

    # terraform_naming_convention (snake_case) for every named block.
    names = [
        *config.variables,
        *config.outputs,
        *config.locals,
        *config.modules,
        *(name for _, name in config.resources),
        *(name for _, name in config.data),
    ]
    for name in names:
        if not SNAKE_CASE.fullmatch(name):
            problem("terraform_naming_convention", f"{name} is not snake_case")

    # terraform_standard_module_structure: variables in variables.tf, outputs in outputs.tf.
    for filename, parsed in config.files.items():
        if parsed.get("variable") and filename != "variables.tf":
            problem("terraform_standard_module_structure", f"variable declared in {filename}")
        if parsed.get("output") and filename != "outputs.tf":
            problem("terraform_standard_module_structure", f"output declared in {filename}")

    # terraform_module_pinned_source: only local modules, which need no pin.
    for name, call in config.modules.items():
        if not call["source"].startswith("./modules/"):
            problem("terraform_module_pinned_source", f"module {name} comes from {call['source']}")

    for filename, lines in files.items():
        for number, line in lines:
            where = f"{filename}:{number}"
            # terraform_deprecated_interpolation: "${x}" alone is just x.
            whole = re.search(r'=\s*"(\$\{.*\})"\s*$', line)
            if whole and whole.group(1).count("${") == 1:
                problem("terraform_deprecated_interpolation", f"{where}: {line.strip()}")
            # terraform_deprecated_index: list.0 instead of list[0].
            if re.search(r"[A-Za-z_\]]\.\d+\b", re.sub(r'"[^"$]*"', '""', line)):
                problem("terraform_deprecated_index", f"{where}: {line.strip()}")
            # terraform_comment_syntax: # comments, not //.
            if line.lstrip().startswith("//"):
                problem("terraform_comment_syntax", f"{where}: // comment")
            # terraform_empty_list_equality: compare length() with 0 instead.
            if re.search(r"[!=]=\s*\[\s*\]", line):
                problem("terraform_empty_list_equality", f"{where}: {line.strip()}")
            # terraform_deprecated_lookup: lookup() without a default.
            if re.search(r"\blookup\((?:[^,()]|\([^()]*\))*,(?:[^,()]|\([^()]*\))*\)", line):
                problem("terraform_deprecated_lookup", f"{where}: {line.strip()}")
            # terraform_workspace_remote: workspaces mean nothing with a remote backend.
            if "terraform.workspace" in line:
                problem("terraform_workspace_remote", f"{where}: terraform.workspace")

    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------------

SKIP_FILES = [
    "infra/terraform/*.tf",
    "infra/terraform/modules/*/*.tf",
    "infra/terraform/tests/*.tftest.hcl",
    "Dockerfile",
]


def _inline_skips() -> dict[str, str]:
    """Every `#checkov:skip=ID:reason` in the scanned files, keyed by file:line:ID."""
    skips = {}
    for pattern in SKIP_FILES:
        for path in sorted(REPO.glob(pattern)):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "checkov:skip" not in line:
                    continue
                match = re.search(r"#\s*checkov:skip=(CKV\w+):(.*)$", line)
                assert match, f"{path.name}:{number}: malformed skip {line.strip()!r}"
                skips[f"{path.relative_to(REPO)}:{number}:{match.group(1)}"] = match.group(2).strip()
    return skips


def _checkov(*args: str) -> list[dict]:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov not found at {CHECKOV}. It lives in its own virtual environment so that its "
            "pinned dependencies never touch .venv: run `make install` (or `python3 -m venv .venv-tools "
            "&& .venv-tools/bin/pip install checkov==3.3.30`)."
        )
    # --skip-download: no call to Prisma Cloud for guidelines (there is no network here anyway).
    result = subprocess.run(
        [str(CHECKOV), *args, "--compact", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov gave no JSON report (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    details = "\n".join(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in failed
    )
    assert not failed, f"checkov failed checks:\n{details}"
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    assert result.returncode == 0, result.stderr[-3000:]
    return reports


def test_checkov_has_no_failed_checks():
    # The secrets framework reports nothing when it finds nothing, so only terraform is always listed.
    reports = {r["check_type"]: r for r in _checkov("-d", str(TF_DIR), "--framework", "terraform", "secrets")}
    reports |= {r["check_type"]: r for r in _checkov("-f", str(REPO / "Dockerfile"), "--framework", "dockerfile")}
    assert reports["terraform"]["summary"]["passed"] > 300  # the whole folder was scanned
    # checkov resolved the module calls' variables (it silently stops when two calls refer to each
    # other): it sees every bucket encrypted, and the media bucket with the customer managed key.
    passed = {(c["check_id"], c["resource"]) for c in reports["terraform"]["results"]["passed_checks"]}
    for bucket in ("module.media_bucket.aws_s3_bucket.this", "module.logs_bucket[0].aws_s3_bucket.this"):
        assert ("CKV_AWS_19", bucket) in passed, f"checkov did not see {bucket} encrypted"
    assert ("CKV_AWS_145", "module.media_bucket.aws_s3_bucket.this") in passed
    assert reports["dockerfile"]["summary"]["passed"] > 0

    # Every skip is inline, carries a real reason, and is still needed (its check still fires).
    skips = _inline_skips()
    for where, reason in skips.items():
        assert len(reason) >= 30, f"{where}: the skip needs a real justification, got {reason!r}"
    skipped = [c for r in reports.values() for c in r["results"]["skipped_checks"]]
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']} skipped without a reason"
    used = {check["check_id"] for check in skipped}
    declared = {where.rsplit(":", 1)[1] for where in skips if "CKV_SECRET_" not in where}
    assert declared <= used, f"stale skips (their check no longer fires): {sorted(declared - used)}"


# ---------------------------------------------------------------------------------------------
# Terraform itself, where it and the AWS provider are on the machine
# ---------------------------------------------------------------------------------------------


def _terraform(*args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    return subprocess.run(
        ["terraform", *args, "-no-color"], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Path:
    if shutil.which("terraform") is None:
        pytest.skip(
            "terraform is not installed (HashiCorp's apt repository is not reachable); "
            "python-hcl2 and checkov cover the static checks"
        )
    provider = TF_PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws"
    if not provider.is_dir():
        pytest.skip(
            f"no local copy of the hashicorp/aws provider under {TF_PLUGIN_DIR} (set TF_PLUGIN_DIR); "
            "the Terraform registry cannot be reached from here"
        )
    # A copy, so that .terraform/ and the lock file never land in the repository.
    work = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(TF_DIR, work, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    result = _terraform("init", "-backend=false", f"-plugin-dir={TF_PLUGIN_DIR}", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return work


def test_terraform_fmt(initialised):
    result = _terraform("fmt", "-check", "-recursive", "-diff", cwd=initialised)
    assert result.returncode == 0, f"run `terraform fmt -recursive infra/terraform`:\n{result.stdout}{result.stderr}"


def test_terraform_validate(initialised):
    result = _terraform("validate", cwd=initialised)
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_offline_apply_with_mocked_provider(initialised):
    result = _terraform("test", cwd=initialised, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "0 failed" in result.stdout, result.stdout[-3000:]


# ---------------------------------------------------------------------------------------------
# Dockerfile (no Docker engine here: checked as text)
# ---------------------------------------------------------------------------------------------


def test_dockerfile_is_one_image_for_api_and_worker():
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [
        line.strip() for line in dockerfile.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    (base,) = [line for line in instructions if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.11[\w.-]*", base), base
    cmd = [line for line in instructions if line.startswith("CMD ")]
    assert cmd and json.loads(cmd[-1][4:]) == API_COMMAND
    user = [line for line in instructions if line.startswith("USER ")]
    assert user and user[-1].split()[1] not in {"root", "0"}, "the image must not run as root"
    # The app finds models/ and openapi.yaml next to api/ (api/wiring/config.py REPO_ROOT): they must be copied.
    # gunicorn on loopback; nginx (python -m api.web.proxy, its template in infra/nginx/) is the way in.
    assert "EMOSCOPE_BIND=127.0.0.1:" in dockerfile
    assert re.search(r"apt-get install -y --no-install-recommends nginx\b", dockerfile)
    for needed in ("gunicorn.conf.py", "openapi.yaml", "models/", "api/", "infra/nginx/"):
        assert any(line.startswith("COPY ") and needed in line for line in instructions), needed
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert "*" in ignore, "the build context must be an allow-list"
    assert {"!api/", "!models/manifest.json", "!pyproject.toml", "!infra/nginx/"} <= set(ignore)
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    assert not any(part in line for line in allowed for part in (".venv", "checkpoints", "var/", "tests", ".git"))
