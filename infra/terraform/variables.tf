################################################################################
# General
################################################################################

variable "aws_region" {
  description = "AWS region to deploy into, for example eu-west-1."
  type        = string
}

variable "name" {
  description = "Name prefix of every resource. Short, because AWS caps load balancer and target group names at 32 characters."
  type        = string
  default     = "emoscope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name))
    error_message = "name must be 2-12 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment (prod, staging, ...); appended to the name prefix and tagged on every resource."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource (through the provider's default_tags)."
  type        = map(string)
  default     = {}
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into public, private (application) and database subnets over two availability zones."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of /20 or larger."
  }
}

variable "availability_zones" {
  description = "The two availability zones to use, for example [\"eu-west-1a\", \"eu-west-1b\"]. null = <aws_region>a and <aws_region>b."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) == 2
    error_message = "availability_zones must name exactly two zones."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for both availability zones (cheaper, but outbound traffic of the private subnets stops if that zone fails). false = one NAT gateway per zone."
  type        = bool
  default     = false
}

################################################################################
# Load balancer
################################################################################

variable "certificate_arn" {
  description = "ARN of the ACM certificate (in aws_region) that the HTTPS listener presents."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the load balancer on ports 443 (and 80, which only redirects to 443)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.3 and 1.2 only by default)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_idle_timeout" {
  description = "Seconds the load balancer keeps an idle connection; above gunicorn's worker timeout (EMOSCOPE_WORKER_TIMEOUT, 120) so that long clip analyses are not cut off by the load balancer first."
  type        = number
  default     = 130
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the load balancer (set to false before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "enable_waf" {
  description = "Attach an AWS WAFv2 web ACL (AWS managed common, known-bad-inputs and IP reputation rules, plus a per-IP rate limit) to the load balancer."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP address above which the WAF blocks that address."
  type        = number
  default     = 3000
}

variable "waf_count_only_rules" {
  description = "Rules of AWSManagedRulesCommonRuleSet switched from block to count. SizeRestrictions_BODY would block every upload over 8 KB, and the body XSS rule misfires on binary image bytes."
  type        = list(string)
  default     = ["SizeRestrictions_BODY", "CrossSiteScripting_BODY"]
}

variable "enable_access_logs" {
  description = "Create a log bucket (SSE-S3, the only encryption these log deliveries support) for ALB access logs and S3 server access logs of the media bucket."
  type        = bool
  default     = true
}

variable "access_logs_retention_days" {
  description = "Days before ALB and S3 access logs expire from the log bucket."
  type        = number
  default     = 90
}

################################################################################
# Containers (ECS Fargate)
################################################################################

variable "image_tag" {
  description = "Tag of the Emoscope image in the ECR repository this configuration creates (tags are immutable: use the git commit SHA). API and worker run the same image."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid Docker tag."
  }
}

variable "api_command" {
  description = "Command of the API container."
  type        = list(string)
  default     = ["gunicorn", "-c", "gunicorn.conf.py", "api.web.app:create_app()"]
}

variable "worker_command" {
  description = "Command of the worker containers (the Celery app is api/wiring/worker.py)."
  type        = list(string)
  default     = ["celery", "-A", "api.wiring.worker", "worker", "--loglevel=INFO"]
}

variable "beat_command" {
  description = "Command of the single Celery beat container, which schedules the periodic tasks (result sweep, usage push to Stripe). Its schedule file lives on the writable /tmp."
  type        = list(string)
  default     = ["celery", "-A", "api.wiring.worker", "beat", "--loglevel=INFO", "--schedule=/tmp/celerybeat-schedule"]
}

variable "api_port" {
  description = "Port of the API task that the load balancer reaches: nginx, the proxy container in front of gunicorn (EMOSCOPE_PROXY_BIND is set to 0.0.0.0:<port>)."
  type        = number
  default     = 8000
}

variable "gunicorn_port" {
  description = "Port gunicorn listens on inside the API task, on loopback only (EMOSCOPE_BIND is set to 127.0.0.1:<port>): only the proxy container reaches it. Must differ from api_port."
  type        = number
  default     = 8001
}

variable "api_cpu" {
  description = "Fargate CPU units of one API task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "api_memory" {
  description = "Memory of one API task, in MiB."
  type        = number
  default     = 4096
}

variable "api_min_count" {
  description = "Minimum (and initial) number of API tasks."
  type        = number
  default     = 2

  validation {
    condition     = var.api_min_count >= 1
    error_message = "api_min_count must be at least 1."
  }
}

variable "api_max_count" {
  description = "Maximum number of API tasks autoscaling may run."
  type        = number
  default     = 10
}

variable "api_cpu_target" {
  description = "Average CPU utilisation (percent) of the API service that target-tracking autoscaling holds."
  type        = number
  default     = 60
}

variable "worker_cpu" {
  description = "Fargate CPU units of one worker task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "worker_memory" {
  description = "Memory of one worker task, in MiB."
  type        = number
  default     = 4096
}

variable "worker_min_count" {
  description = "Minimum (and initial) number of worker tasks. At least 1: the scaling metric is queue backlog per running task."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_min_count >= 1
    error_message = "worker_min_count must be at least 1 (backlog per task is undefined with no task)."
  }
}

variable "worker_max_count" {
  description = "Maximum number of worker tasks autoscaling may run."
  type        = number
  default     = 10
}

variable "worker_backlog_per_task_target" {
  description = "Visible jobs in the SQS queue per running worker task that target-tracking autoscaling holds (acceptable latency / time per job)."
  type        = number
  default     = 10
}

variable "app_environment" {
  description = "Extra plain (non-secret) environment variables for API and worker, for example EMOSCOPE_WORKERS or EMOSCOPE_MAX_UPLOAD_BYTES. Variables this configuration sets itself win over these."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.app_environment), [
      "DATABASE_URL", "REDIS_URL", "EMOSCOPE_API_KEY_PEPPER", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET",
    ])) == 0
    error_message = "Secrets (DATABASE_URL, REDIS_URL, EMOSCOPE_API_KEY_PEPPER, STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET) come from Secrets Manager, never from app_environment."
  }
}

variable "enable_execute_command" {
  description = "Allow `aws ecs execute-command` into running tasks (sessions are logged to CloudWatch, encrypted)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the application, ECS Exec, RDS, Redis and WAF log groups, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

################################################################################
# Media bucket and job queue
################################################################################

variable "media_retention_days" {
  description = "Days after which uploaded media and results expire from the S3 bucket; also passed to the app as EMOSCOPE_MEDIA_RETENTION_HOURS (days x 24)."
  type        = number
  default     = 1

  validation {
    condition     = var.media_retention_days >= 1 && floor(var.media_retention_days) == var.media_retention_days
    error_message = "media_retention_days must be a whole number of days, at least 1 (S3 lifecycle granularity)."
  }
}

variable "s3_object_prefixes" {
  description = "Key prefixes under which the app stores objects; the task roles may read, write and delete only under these."
  type        = list(string)
  default     = ["media/", "results/", "studies/"]

  validation {
    condition     = alltrue([for p in var.s3_object_prefixes : can(regex("^[A-Za-z0-9!_.()'-]+/$", p))])
    error_message = "Each prefix must be a plain folder name ending with '/'."
  }
}

variable "s3_expiring_prefixes" {
  description = "Prefixes whose objects expire after media_retention_days (job media and results); study stimuli are kept until their study is deleted."
  type        = list(string)
  default     = ["media/", "results/"]

  validation {
    condition     = alltrue([for p in var.s3_expiring_prefixes : can(regex("^[A-Za-z0-9!_.()'-]+/$", p))])
    error_message = "Each prefix must be a plain folder name ending with '/'."
  }
}

variable "sqs_visibility_timeout_seconds" {
  description = "Visibility timeout of the jobs queue; longer than the longest job, or a job is delivered twice."
  type        = number
  default     = 900
}

variable "sqs_message_retention_seconds" {
  description = "How long an unprocessed job stays in the queue (default one day, the media retention)."
  type        = number
  default     = 86400
}

variable "sqs_max_receive_count" {
  description = "Deliveries of one job before it moves to the dead-letter queue."
  type        = number
  default     = 5
}

################################################################################
# PostgreSQL (RDS)
################################################################################

variable "db_engine_version" {
  description = "PostgreSQL major version (minor versions are upgraded automatically in the maintenance window)."
  type        = string
  default     = "16"
}

variable "db_parameter_group_family" {
  description = "DB parameter group family matching db_engine_version."
  type        = string
  default     = "postgres16"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial storage of the database, in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Upper bound of storage autoscaling, in GiB."
  type        = number
  default     = 200
}

variable "db_multi_az" {
  description = "Run a synchronous standby in the second availability zone (automatic failover)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_iam_auth" {
  description = "Enable IAM database authentication (password authentication keeps working; the app uses DATABASE_URL)."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (set to false before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "db_performance_insights_retention_days" {
  description = "Retention of Performance Insights data, in days (7 is free)."
  type        = number
  default     = 7
}

################################################################################
# Redis (ElastiCache)
################################################################################

variable "redis_engine_version" {
  description = "Redis engine version of the ElastiCache replication group."
  type        = string
  default     = "7.1"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_multi_az" {
  description = "Run a replica in the second availability zone with automatic failover (2 nodes); false = a single node."
  type        = bool
  default     = true
}

variable "redis_snapshot_retention_days" {
  description = "Days of automatic Redis snapshots (rate-limit counters only, so short)."
  type        = number
  default     = 1
}

################################################################################
# Secrets, alarms
################################################################################

variable "secret_recovery_window_days" {
  description = "Days a deleted Secrets Manager secret can still be restored."
  type        = number
  default     = 7
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm SNS topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "alarm_5xx_threshold" {
  description = "5xx responses in 5 minutes (load balancer's own, and the targets') above which an alarm fires."
  type        = number
  default     = 10
}

variable "alarm_latency_p95_seconds" {
  description = "p95 of the targets' response time (seconds, over 5 minutes) above which an alarm fires."
  type        = number
  default     = 2
}

variable "alarm_rds_cpu_percent" {
  description = "Database CPU utilisation (percent, 15 minutes) above which an alarm fires."
  type        = number
  default     = 80
}

variable "alarm_rds_free_storage_bytes" {
  description = "Free database storage (bytes) below which an alarm fires."
  type        = number
  default     = 5368709120
}

variable "alarm_queue_age_seconds" {
  description = "Age of the oldest job in the queue (seconds) above which an alarm fires."
  type        = number
  default     = 600
}
