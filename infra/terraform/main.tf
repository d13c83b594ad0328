# Emoscope on AWS: one `terraform apply` creates the network, the load balancer, the API and worker
# services on ECS Fargate, PostgreSQL, Redis, the media bucket, the job queue, their secrets, logs and
# alarms. Files: network.tf, alb.tf, ecs.tf, iam.tf, data.tf (RDS, Redis, S3, SQS), secrets.tf,
# monitoring.tf. Everything that stores data is encrypted with the customer managed key below.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project     = var.name
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# The zones are named, not "the first two available": a zone that AWS adds, or that is briefly
# unavailable, must never move (and so replace) the subnets. The data source checks they exist.
# tflint-ignore: terraform_unused_declarations (read only by its own postcondition, which is its purpose)
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.azs
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == 2
      error_message = "Both availability zones (${join(", ", local.azs)}) must exist and be available in ${var.aws_region}; set availability_zones."
    }
  }
}

locals {
  name       = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  azs        = coalesce(var.availability_zones, ["${var.aws_region}a", "${var.aws_region}b"])

  image = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

  # Log groups are named here once: the key policy, the roles and the resources all use these.
  log_groups = {
    api      = "/ecs/${local.name}/api"
    worker   = "/ecs/${local.name}/worker"
    beat     = "/ecs/${local.name}/beat"
    exec     = "/ecs/${local.name}/exec"
    flow     = "/vpc/${local.name}/flow-logs"
    redis    = "/elasticache/${local.name}/slow-log"
    waf      = "aws-waf-logs-${local.name}" # WAF requires the aws-waf-logs- prefix
    postgres = "/aws/rds/instance/${local.name}-postgres/postgresql"
    upgrade  = "/aws/rds/instance/${local.name}-postgres/upgrade"
  }
}

# Every log group of the deployment, encrypted and expiring alike; the WAF's only with the WAF.
resource "aws_cloudwatch_log_group" "this" {
  for_each = { for key, name in local.log_groups : key => name if key != "waf" || var.enable_waf }

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

################################################################################
# Customer managed key: RDS, Performance Insights, S3, SQS, SNS, ElastiCache, Secrets Manager,
# CloudWatch Logs and ECR. IAM policies in this account grant its use (statement 1); the two AWS
# services that call KMS as themselves (CloudWatch Logs, CloudWatch alarms -> SNS) are named here.
# The alarm statement has no condition because AWS documents none that CloudWatch sets on these calls.
################################################################################

resource "aws_kms_key" "this" {
  description             = "${local.name}: encryption of data at rest"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        Sid       = "CloudWatchAlarmsToEncryptedSNS"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}
