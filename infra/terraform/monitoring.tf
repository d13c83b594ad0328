################################################################################
# Alarms to an encrypted SNS topic (e-mail subscribers from var.alarm_emails)
################################################################################

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

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

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]

  # Every alarm notifies the topic on alarm and on recovery. Each names statistic or
  # extended_statistic; datapoints_to_alarm only where fewer than evaluation_periods must breach.
  alb_dimensions = { LoadBalancer = aws_lb.this.arn_suffix }
  api_dimensions = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
  rds_dimensions = { DBInstanceIdentifier = aws_db_instance.this.identifier }
  alarms = {
    alb_5xx = {
      name                = "alb-5xx"
      description         = "The load balancer itself answered 5xx (no healthy target, timeouts) more than ${var.alarm_5xx_threshold} times in 5 minutes."
      namespace           = "AWS/ApplicationELB"
      metric_name         = "HTTPCode_ELB_5XX_Count"
      dimensions          = local.alb_dimensions
      statistic           = "Sum"
      period              = 300
      evaluation_periods  = 1
      comparison_operator = "GreaterThanThreshold"
      threshold           = var.alarm_5xx_threshold
      treat_missing_data  = "notBreaching"
    }
    target_5xx = {
      name                = "api-5xx"
      description         = "The API answered 5xx more than ${var.alarm_5xx_threshold} times in 5 minutes."
      namespace           = "AWS/ApplicationELB"
      metric_name         = "HTTPCode_Target_5XX_Count"
      dimensions          = local.api_dimensions
      statistic           = "Sum"
      period              = 300
      evaluation_periods  = 1
      comparison_operator = "GreaterThanThreshold"
      threshold           = var.alarm_5xx_threshold
      treat_missing_data  = "notBreaching"
    }
    latency_p95 = {
      name                = "api-latency-p95"
      description         = "p95 of the API's response time is above ${var.alarm_latency_p95_seconds} s for 10 of the last 15 minutes."
      namespace           = "AWS/ApplicationELB"
      metric_name         = "TargetResponseTime"
      dimensions          = local.api_dimensions
      extended_statistic  = "p95"
      period              = 300
      evaluation_periods  = 3
      datapoints_to_alarm = 2
      comparison_operator = "GreaterThanThreshold"
      threshold           = var.alarm_latency_p95_seconds
      treat_missing_data  = "notBreaching"
    }
    rds_cpu = {
      name                = "rds-cpu"
      description         = "Database CPU above ${var.alarm_rds_cpu_percent}% for 15 minutes."
      namespace           = "AWS/RDS"
      metric_name         = "CPUUtilization"
      dimensions          = local.rds_dimensions
      statistic           = "Average"
      period              = 300
      evaluation_periods  = 3
      comparison_operator = "GreaterThanThreshold"
      threshold           = var.alarm_rds_cpu_percent
      treat_missing_data  = "breaching"
    }
    rds_free_storage = {
      name                = "rds-free-storage"
      description         = "Database free storage below ${var.alarm_rds_free_storage_bytes} bytes (storage autoscaling stops at db_max_allocated_storage)."
      namespace           = "AWS/RDS"
      metric_name         = "FreeStorageSpace"
      dimensions          = local.rds_dimensions
      statistic           = "Minimum"
      period              = 300
      evaluation_periods  = 1
      comparison_operator = "LessThanThreshold"
      threshold           = var.alarm_rds_free_storage_bytes
      treat_missing_data  = "breaching"
    }
    queue_oldest_age = {
      name                = "jobs-oldest-age"
      description         = "A job has waited in the queue longer than ${var.alarm_queue_age_seconds} s: workers are down, stuck or at worker_max_count."
      namespace           = "AWS/SQS"
      metric_name         = "ApproximateAgeOfOldestMessage"
      dimensions          = { QueueName = aws_sqs_queue.jobs.name }
      statistic           = "Maximum"
      period              = 60
      evaluation_periods  = 5
      datapoints_to_alarm = 3
      comparison_operator = "GreaterThanThreshold"
      threshold           = var.alarm_queue_age_seconds
      treat_missing_data  = "notBreaching"
    }
    dlq_not_empty = {
      name                = "jobs-dlq-not-empty"
      description         = "A job failed ${var.sqs_max_receive_count} times and is in the dead-letter queue."
      namespace           = "AWS/SQS"
      metric_name         = "ApproximateNumberOfMessagesVisible"
      dimensions          = { QueueName = aws_sqs_queue.jobs_dlq.name }
      statistic           = "Maximum"
      period              = 60
      evaluation_periods  = 1
      comparison_operator = "GreaterThanThreshold"
      threshold           = 0
      treat_missing_data  = "notBreaching"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${local.name}-${each.value.name}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = lookup(each.value, "statistic", null)
  extended_statistic  = lookup(each.value, "extended_statistic", null)
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = lookup(each.value, "datapoints_to_alarm", null)
  comparison_operator = each.value.comparison_operator
  threshold           = each.value.threshold
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
