################################################################################
# IAM, least privilege: every statement names its resources; the only "*" is
# ecr:GetAuthorizationToken (and ECS Exec's ssmmessages, when enabled), which AWS cannot scope.
################################################################################

locals {
  log_group_arn_prefix = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:"
  s3_object_arns       = [for p in var.s3_object_prefixes : "${module.media_bucket.arn}/${p}*"]
}

################################################################################
# ECS task execution role (the ECS agent): pull the image, read the five app secrets, write logs.
# One role for the three task definitions: they run the same image with the same secrets.
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-ecs-execution"
  description        = "ECS agent for the Emoscope tasks: pulls the image, reads the app secrets, writes logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuthorizationTokenIsNotScopable"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "WriteContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for role in ["api", "worker", "beat"] : "${aws_cloudwatch_log_group.this[role].arn}:log-stream:*"]
  }

  statement {
    sid       = "ReadTheAppSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(local.app_secrets)
  }

  statement {
    sid       = "DecryptSecretsAndImage"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com", "ecr.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-read-secrets-write-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

################################################################################
# Task roles (the app's own AWS calls)
#   api:    objects under the prefixes (put, get, delete); send jobs.
#   worker: objects under the prefixes (get, put, delete); receive, delete, extend, and send jobs
#           (a finished job queues its webhook task; retries re-publish).
#   beat:   send the periodic tasks; nothing else.
# s3:ListBucket (bucket level, no object access) is what makes S3 answer 404 rather than 403 for a
# missing key, which the app's storage.exists() relies on.
################################################################################

resource "aws_iam_role" "task" {
  for_each = toset(["api", "worker", "beat"])

  name               = "${local.name}-${each.key}-task"
  description        = "Emoscope ${each.key} containers"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "api_task" {
  statement {
    sid       = "MediaObjects"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = local.s3_object_arns
  }

  statement {
    sid       = "MissingKeysAre404"
    actions   = ["s3:ListBucket"]
    resources = [module.media_bucket.arn]
  }

  statement {
    sid       = "SendJobs"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "EncryptObjectsAndJobs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "sqs.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "worker_task" {
  statement {
    sid       = "MediaObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.s3_object_arns
  }

  statement {
    sid       = "MissingKeysAre404"
    actions   = ["s3:ListBucket"]
    resources = [module.media_bucket.arn]
  }

  statement {
    sid = "ConsumeJobs"
    actions = [
      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "EncryptObjectsAndJobs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "sqs.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "beat_task" {
  statement {
    sid       = "SendPeriodicTasks"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "EncryptJobs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "api_task" {
  name   = "media-objects-send-jobs"
  role   = aws_iam_role.task["api"].id
  policy = data.aws_iam_policy_document.api_task.json
}

resource "aws_iam_role_policy" "worker_task" {
  name   = "media-objects-consume-jobs"
  role   = aws_iam_role.task["worker"].id
  policy = data.aws_iam_policy_document.worker_task.json
}

resource "aws_iam_role_policy" "beat_task" {
  name   = "send-periodic-tasks"
  role   = aws_iam_role.task["beat"].id
  policy = data.aws_iam_policy_document.beat_task.json
}

# ECS Exec (only with enable_execute_command): the SSM channel, and the encrypted session log.
data "aws_iam_policy_document" "exec" {
  statement {
    sid = "SsmMessagesChannelIsNotScopable"
    actions = [
      "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "SessionLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.this["exec"].arn}:*"]
  }

  statement {
    sid       = "DescribeSessionLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["${local.log_group_arn_prefix}*"]
  }

  statement {
    sid       = "SessionEncryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "exec" {
  for_each = var.enable_execute_command ? toset(["api", "worker", "beat"]) : toset([])

  name   = "ecs-exec"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.exec.json
}

################################################################################
# VPC flow logs and RDS enhanced monitoring
################################################################################

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${local.name}-flow-logs"
  description        = "Delivers the VPC flow logs of ${local.name} to CloudWatch Logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.this["flow"].arn}:*"]
  }

  statement {
    actions   = ["logs:DescribeLogGroups"]
    resources = ["${local.log_group_arn_prefix}*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  description        = "RDS enhanced monitoring of ${local.name}"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
