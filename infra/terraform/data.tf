################################################################################
# Media and results bucket: SSE-KMS with the CMK, no public access, versioned, TLS only, job media
# and results (and every old version) gone after media_retention_days. Every bucket is made by
# modules/s3-bucket, which holds what the buckets share.
################################################################################

locals {
  media_bucket_name = "${local.name}-media-${local.account_id}"
}

module "media_bucket" {
  #checkov:skip=CKV_AWS_144:Cross-region replication would keep a second copy of user media that must expire after media_retention_days; the data is transient by design.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 events: jobs are announced on the SQS queue by the API.
  source = "./modules/s3-bucket"

  bucket        = local.media_bucket_name
  sse_algorithm = "aws:kms"
  kms_key_arn   = aws_kms_key.this.arn

  lifecycle_rules = concat(
    # Job media and results expire; study stimuli (studies/) stay until their study is deleted.
    [for prefix in toset(var.s3_expiring_prefixes) : {
      id              = "expire-${trimsuffix(prefix, "/")}-after-retention"
      prefix          = prefix
      expiration_days = var.media_retention_days
    }],
    [
      # An overwritten or deleted object survives at most one more day as a noncurrent version.
      {
        id                                     = "drop-old-versions-and-uploads"
        noncurrent_version_expiration_days     = 1
        abort_incomplete_multipart_upload_days = 1
      },
      {
        id                           = "remove-expired-delete-markers"
        expired_object_delete_marker = true
      },
    ],
  )

  access_log_target = var.enable_access_logs ? { bucket = module.logs_bucket[0].id, prefix = "s3/media/" } : null
}

################################################################################
# Log bucket (optional): ALB access logs and S3 server access logs. Both AWS log deliveries write
# only to buckets encrypted with SSE-S3, so this bucket cannot use the CMK.
################################################################################

# Regions opened before August 2022 deliver ALB logs from a regional ELB account; newer ones from the
# log delivery service principal. Both are allowed, only under the alb/ prefix of this account. The
# ELB account is looked up only in those older regions (the data source fails in newer ones).
locals {
  elb_account_regions = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-south-1", "eu-north-1", "me-south-1", "sa-east-1", "us-gov-west-1", "us-gov-east-1",
    "cn-north-1", "cn-northwest-1",
  ]
  elb_account_principals = var.enable_access_logs && contains(local.elb_account_regions, var.aws_region) ? [data.aws_elb_service_account.this[0].arn] : []
  alb_log_prefix         = "alb/AWSLogs/${local.account_id}/"
}

data "aws_elb_service_account" "this" {
  count = var.enable_access_logs && contains(local.elb_account_regions, var.aws_region) ? 1 : 0
}

module "logs_bucket" {
  #checkov:skip=CKV_AWS_18:This is the access-log bucket itself; logging it into itself would loop and logging it elsewhere needs yet another bucket.
  #checkov:skip=CKV_AWS_144:Access logs are kept for access_logs_retention_days in one region; a replica would double cost for no recovery need.
  #checkov:skip=CKV_AWS_145:ALB access logs and S3 server access logs can only be delivered to SSE-S3 (AES256) buckets; SSE-KMS is not supported by either delivery.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the log bucket.
  source = "./modules/s3-bucket"
  count  = var.enable_access_logs ? 1 : 0

  bucket        = "${local.name}-logs-${local.account_id}"
  sse_algorithm = "AES256" # see above
  # Not yet here: refusing TLS < 1.2 changes this bucket's policy, a change to roll out on its own.
  deny_outdated_tls = false

  lifecycle_rules = [{
    id                                     = "expire-access-logs"
    expiration_days                        = var.access_logs_retention_days
    noncurrent_version_expiration_days     = 1
    abort_incomplete_multipart_upload_days = 1
  }]

  object_writers = concat(
    length(local.elb_account_principals) > 0 ? [{
      sid            = "AlbAccessLogsLegacyRegions"
      principal_type = "AWS"
      principals     = local.elb_account_principals
      key_prefix     = local.alb_log_prefix
    }] : [],
    [
      {
        sid            = "AlbAccessLogs"
        principal_type = "Service"
        principals     = ["logdelivery.elasticloadbalancing.amazonaws.com"]
        key_prefix     = local.alb_log_prefix
      },
      {
        sid            = "S3ServerAccessLogs"
        principal_type = "Service"
        principals     = ["logging.s3.amazonaws.com"]
        key_prefix     = "s3/"
        conditions = [
          # Written out rather than read from module.media_bucket, which refers to this bucket already:
          # checkov stops resolving the variables of two module calls that refer to each other.
          { test = "ArnLike", variable = "aws:SourceArn", values = ["arn:${local.partition}:s3:::${local.media_bucket_name}"] },
          { test = "StringEquals", variable = "aws:SourceAccount", values = [local.account_id] },
        ]
      },
    ],
  )
}

################################################################################
# Job queue (Celery's broker) and its dead-letter queue, encrypted with the CMK
################################################################################

resource "aws_sqs_queue" "jobs_dlq" {
  name                              = "${local.name}-jobs-dlq"
  message_retention_seconds         = 1209600 # 14 days to inspect failed jobs (the payload is ids, not media)
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "jobs" {
  name                              = "${local.name}-jobs"
  visibility_timeout_seconds        = var.sqs_visibility_timeout_seconds
  message_retention_seconds         = var.sqs_message_retention_seconds
  receive_wait_time_seconds         = 20 # long polling
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.jobs_dlq.arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "jobs_dlq" {
  queue_url = aws_sqs_queue.jobs_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}

locals {
  queues = {
    jobs     = aws_sqs_queue.jobs
    jobs_dlq = aws_sqs_queue.jobs_dlq
  }
}

data "aws_iam_policy_document" "queue_tls_only" {
  for_each = local.queues

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = local.queues

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.queue_tls_only[each.key].json
}

################################################################################
# PostgreSQL (RDS): CMK-encrypted storage and Performance Insights, TLS forced, private subnets,
# backups, deletion protection, logs to the encrypted log groups (main.tf), created first.
################################################################################

resource "aws_db_subnet_group" "this" {
  name       = "${local.name}-db"
  subnet_ids = local.subnet_ids.database
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${local.name}-pg-"
  family      = var.db_parameter_group_family
  description = "Emoscope PostgreSQL: TLS only, slow statements and DDL logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "this" {
  identifier     = "${local.name}-postgres"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = "emoscope"
  username = "emoscope"
  password = aws_secretsmanager_secret_version.generated["db_password"].secret_string
  port     = 5432

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  multi_az               = var.db_multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this["db"].id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = var.db_iam_auth

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.db_deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.name}-postgres-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = var.db_performance_insights_retention_days

  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.this]
}

################################################################################
# Redis (ElastiCache) for rate limits: TLS required, AUTH token from Secrets Manager, CMK at rest,
# replica with automatic failover in the second zone.
################################################################################

resource "aws_elasticache_subnet_group" "this" {
  name       = "${local.name}-redis"
  subnet_ids = local.subnet_ids.database
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = "${local.name}-redis"
  description          = "Emoscope rate limits"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379

  num_cache_clusters         = var.redis_multi_az ? 2 : 1
  automatic_failover_enabled = var.redis_multi_az
  multi_az_enabled           = var.redis_multi_az

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this["redis"].id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this.arn
  transit_encryption_enabled = true
  auth_token                 = aws_secretsmanager_secret_version.generated["redis_auth_token"].secret_string

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.this["redis"].name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}
