# Offline runs (no AWS account, no credentials): `terraform test` with a mocked AWS provider, so that
# "apply" only computes values here.
# Checks that every expression evaluates for the default settings and for the optional features
# switched the other way, and pins a few facts the app depends on. Needs Terraform >= 1.7.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b"] }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_secretsmanager_random_password" {
    defaults = { random_password = "mockedmockedmockedmocked" }
  }
  mock_data "aws_elb_service_account" {
    defaults = { arn = "arn:aws:iam::156460612806:root" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::emoscope-prod-media-123456789012" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:emoscope-prod-jobs"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/emoscope-prod-jobs"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mocked" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mocked" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mocked" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:eu-west-1:123456789012:repository/emoscope-prod"
      repository_url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/emoscope-prod"
    }
  }
  mock_resource "aws_lb" {
    defaults = { arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/emoscope-prod/0123456789abcdef" }
  }
  mock_resource "aws_lb_target_group" {
    defaults = { arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/emoscope-prod-api/0123456789abcdef" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:emoscope-prod-alarms" }
  }
  mock_resource "aws_wafv2_web_acl" {
    defaults = { arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/emoscope-prod/mocked" }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/emoscope-prod:1" }
  }
}

variables {
  aws_region      = "eu-west-1"
  certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  image_tag       = "0123abc"
}

run "defaults" {
  command = apply # against the mocked provider: nothing leaves this machine

  assert {
    condition     = aws_db_instance.this.storage_encrypted && !aws_db_instance.this.publicly_accessible && aws_db_instance.this.deletion_protection
    error_message = "RDS must be encrypted, private and deletion-protected."
  }

  assert {
    condition     = one([for r in module.media_bucket.lifecycle_rules : r.expiration[0].days if r.id == "expire-media-after-retention"]) == 1
    error_message = "Media must expire after media_retention_days (default 1)."
  }

  assert {
    condition     = length([for r in module.media_bucket.lifecycle_rules : r if r.filter[0].prefix == "studies/"]) == 0
    error_message = "Study stimuli (studies/) must not expire with job media."
  }

  assert {
    condition = (
      length(aws_cloudwatch_metric_alarm.this) == 7
      && alltrue([for a in aws_cloudwatch_metric_alarm.this : a.alarm_actions == toset([aws_sns_topic.alarms.arn])])
    )
    error_message = "Seven alarms, each notifying the alarm topic."
  }

  assert {
    condition     = length(aws_cloudwatch_log_group.this) == 9 && length(aws_vpc_security_group_ingress_rule.data_store_from_app) == 4
    error_message = "Every log group (the WAF's included), and PostgreSQL and Redis each open to the API and worker tasks."
  }

  assert {
    condition     = output.media_retention_hours == 24
    error_message = "EMOSCOPE_MEDIA_RETENTION_HOURS must be media_retention_days x 24."
  }

  assert {
    condition = toset([for e in jsondecode(aws_ecs_task_definition.this["worker"].container_definitions)[0].environment : e.name]) == toset([
      "S3_BUCKET", "S3_KMS_KEY_ID", "SQS_QUEUE_URL", "CELERY_BROKER_URL", "CELERY_VISIBILITY_TIMEOUT",
      "EMOSCOPE_MEDIA_RETENTION_HOURS", "EMOSCOPE_STATE_DIR", "AWS_REGION", "AWS_DEFAULT_REGION",
    ])
    error_message = "Worker environment is not the expected set."
  }

  assert {
    condition = toset([for e in jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].secrets : e.name]) == toset([
      "DATABASE_URL", "REDIS_URL", "EMOSCOPE_API_KEY_PEPPER", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET",
    ])
    error_message = "API secrets are not the expected set."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].command == ["gunicorn", "-c", "gunicorn.conf.py", "api.web.app:create_app()"]
    error_message = "API command changed."
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[1].name == "proxy"
      && jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[1].command == ["python", "-m", "api.web.proxy"]
      && jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[1].portMappings[0].containerPort == 8000
      && [for lb in aws_ecs_service.api.load_balancer : lb.container_name] == ["proxy"]
    )
    error_message = "The load balancer must reach the API task through nginx (python -m api.web.proxy) on port 8000."
  }

  assert {
    condition = (
      one([for e in jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].environment : e.value if e.name == "EMOSCOPE_BIND"]) == "127.0.0.1:8001"
      && length(jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].portMappings) == 0
      && length(jsondecode(aws_ecs_task_definition.this["worker"].container_definitions)) == 1
    )
    error_message = "Behind nginx, gunicorn binds loopback only and maps no port; workers have no proxy."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["worker"].container_definitions)[0].command == ["celery", "-A", "api.wiring.worker", "worker", "--loglevel=INFO"]
    error_message = "Worker command changed."
  }

  assert {
    condition     = aws_ecs_service.beat.desired_count == 1 && aws_ecs_service.beat.deployment_maximum_percent == 100
    error_message = "Exactly one Celery beat, never two during a deployment."
  }

  assert {
    condition     = length(aws_iam_role_policy.exec) == 0 && length(aws_iam_role.task) == 3
    error_message = "One task role per container kind; no ECS Exec policy by default."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].readonlyRootFilesystem
    error_message = "Root filesystem must be read-only unless ECS Exec is enabled."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/emoscope-prod:0123abc"
    error_message = "Image must be the ECR repository with image_tag."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 2 && length(module.logs_bucket) == 1 && length(aws_wafv2_web_acl.this) == 1
    error_message = "Defaults: one NAT gateway per zone, access logs and WAF on."
  }

  assert {
    condition     = aws_elasticache_replication_group.this.num_cache_clusters == 2 && aws_elasticache_replication_group.this.transit_encryption_enabled
    error_message = "Redis: two nodes, TLS."
  }

  assert {
    condition     = aws_subnet.this["private-0"].availability_zone == "eu-west-1a" && aws_subnet.this["private-1"].availability_zone == "eu-west-1b"
    error_message = "Subnets must lie in <region>a and <region>b by default."
  }
}

run "small_and_open_features_off" {
  command = apply

  variables {
    environment            = "dev"
    media_retention_days   = 3
    single_nat_gateway     = true
    enable_access_logs     = false
    enable_waf             = false
    enable_execute_command = true
    db_multi_az            = false
    redis_multi_az         = false
    availability_zones     = ["eu-west-1b", "eu-west-1c"]
    app_environment        = { EMOSCOPE_WORKERS = "4", S3_BUCKET = "ignored" }
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(module.logs_bucket) == 0 && length(aws_wafv2_web_acl.this) == 0
    error_message = "Optional features must be off."
  }

  assert {
    condition     = !contains(keys(aws_cloudwatch_log_group.this), "waf") && length(aws_cloudwatch_log_group.this) == 8
    error_message = "No WAF, no WAF log group."
  }

  assert {
    condition     = output.media_retention_hours == 72 && one([for r in module.media_bucket.lifecycle_rules : r.expiration[0].days if r.id == "expire-media-after-retention"]) == 3
    error_message = "Retention must follow media_retention_days."
  }

  assert {
    condition     = !jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].readonlyRootFilesystem && length(aws_iam_role_policy.exec) == 3
    error_message = "ECS Exec needs a writable root filesystem and the exec policy."
  }

  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].environment : e.name => e.value
    }["EMOSCOPE_WORKERS"] == "4"
    error_message = "app_environment must reach the containers."
  }

  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this["api"].container_definitions)[0].environment : e.name => e.value
    }["S3_BUCKET"] != "ignored"
    error_message = "Settings of this configuration must win over app_environment."
  }

  assert {
    condition     = aws_elasticache_replication_group.this.num_cache_clusters == 1 && !aws_elasticache_replication_group.this.automatic_failover_enabled
    error_message = "Single-node Redis must not ask for failover."
  }

  assert {
    condition     = aws_subnet.this["public-0"].availability_zone == "eu-west-1b"
    error_message = "availability_zones must be honoured."
  }
}

run "secrets_never_in_app_environment" {
  command = plan

  variables {
    app_environment = { DATABASE_URL = "postgresql://leak" }
  }

  expect_failures = [var.app_environment]
}
