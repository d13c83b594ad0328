################################################################################
# Image registry: one repository, one image for API and worker (the Dockerfile at the repo root).
################################################################################

resource "aws_ecr_repository" "this" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 30 newest images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

################################################################################
# Cluster and logs
################################################################################

resource "aws_ecs_cluster" "this" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled" # also publishes RunningTaskCount, which the worker scaling metric divides by
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.this.arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.this["exec"].name
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

################################################################################
# Task definitions: same image, same environment and secrets, different command
# (api: gunicorn, with nginx in front in a second container; worker: Celery worker, autoscaled; beat:
# Celery beat, exactly one).
################################################################################

locals {
  # Plain settings of the app (README's configuration table). Values here win over var.app_environment.
  app_environment = {
    S3_BUCKET                      = module.media_bucket.id
    S3_KMS_KEY_ID                  = aws_kms_key.this.arn # the app sends SSE-KMS with it (else it asks for AES256)
    SQS_QUEUE_URL                  = aws_sqs_queue.jobs.url
    CELERY_BROKER_URL              = "sqs://" # credentials from the task role
    CELERY_VISIBILITY_TIMEOUT      = tostring(var.sqs_visibility_timeout_seconds)
    EMOSCOPE_MEDIA_RETENTION_HOURS = tostring(var.media_retention_days * 24)
    EMOSCOPE_STATE_DIR             = "/app/var"
    AWS_REGION                     = local.region
    AWS_DEFAULT_REGION             = local.region
  }

  # Secrets: ECS reads them at task start with the execution role and hands them to the container as
  # environment variables; they never appear in the task definition.
  app_secrets = {
    DATABASE_URL            = aws_secretsmanager_secret.this["database_url"].arn
    REDIS_URL               = aws_secretsmanager_secret.this["redis_url"].arn
    EMOSCOPE_API_KEY_PEPPER = aws_secretsmanager_secret.this["api_key_pepper"].arn
    STRIPE_API_KEY          = aws_secretsmanager_secret.this["stripe_api_key"].arn
    STRIPE_WEBHOOK_SECRET   = aws_secretsmanager_secret.this["stripe_webhook_secret"].arn
  }

  containers = {
    api = {
      cpu     = var.api_cpu
      memory  = var.api_memory
      command = var.api_command
      # Loopback only: the proxy container (below) is the task's only way in. The app trusts two
      # X-Forwarded-For hops: the load balancer appends the client's address, nginx the load balancer's.
      environment   = { EMOSCOPE_BIND = "127.0.0.1:${var.gunicorn_port}", EMOSCOPE_TRUSTED_PROXY_HOPS = "2" }
      port_mappings = []
      stop_timeout  = 40 # gunicorn graceful_timeout (30 s) plus margin
      health_check = {
        command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.gunicorn_port}/healthz', timeout=4)"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 120
      }
    }
    worker = {
      cpu           = var.worker_cpu
      memory        = var.worker_memory
      command       = var.worker_command
      environment   = {}
      port_mappings = []
      stop_timeout  = 120 # Fargate's maximum: lets Celery finish the job in hand on SIGTERM
      health_check  = null
    }
    beat = {
      cpu           = 512
      memory        = 1024
      command       = var.beat_command
      environment   = {}
      port_mappings = []
      stop_timeout  = 30
      health_check  = null
    }
  }
}

locals {
  # nginx in front of gunicorn, a second container of the API task from the same image (sharing the task's
  # network namespace). The load balancer passes a request body on as it arrives and only times out an
  # idle connection, so without nginx a few dozen clients trickling bodies hold every gunicorn thread;
  # nginx reads each request whole (header and body timeouts) first (infra/terraform/README.md).
  proxy_container = {
    name      = "proxy"
    image     = local.image
    essential = true
    command   = ["python", "-m", "api.web.proxy"]
    user      = "10001"

    portMappings = [{ containerPort = var.api_port, protocol = "tcp" }]
    # No secrets: nginx needs none. Its body limit follows the app's upload limit, when one is set.
    environment = [
      for k, v in merge(
        { for k, v in var.app_environment : k => v if k == "EMOSCOPE_MAX_UPLOAD_BYTES" },
        { EMOSCOPE_BIND = "127.0.0.1:${var.gunicorn_port}", EMOSCOPE_PROXY_BIND = "0.0.0.0:${var.api_port}" },
      ) : { name = k, value = v }
    ]
    # Started once gunicorn answers; stopped first (ECS stops in reverse order), after the load balancer
    # has drained the task.
    dependsOn = [{ containerName = "api", condition = "HEALTHY" }]

    readonlyRootFilesystem = !var.enable_execute_command
    privileged             = false
    mountPoints            = [{ sourceVolume = "proxy-tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    stopTimeout = 10
    healthCheck = {
      command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.api_port}/healthz', timeout=4)"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this["api"].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "proxy"
        mode                  = "non-blocking"
        max-buffer-size       = "4m"
      }
    }
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.containers

  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # The root filesystem is read-only; the app writes only its state dir and /tmp (task storage).
  volume {
    name = "state"
  }

  volume {
    name = "tmp"
  }

  dynamic "volume" {
    for_each = each.key == "api" ? ["proxy-tmp"] : []

    content {
      name = volume.value
    }
  }

  container_definitions = jsonencode(concat([
    merge(
      {
        name      = each.key
        image     = local.image
        essential = true
        command   = each.value.command
        user      = "10001"

        portMappings = each.value.port_mappings

        environment = [
          for k, v in merge(var.app_environment, local.app_environment, each.value.environment) : { name = k, value = v }
        ]
        secrets = [for k, arn in local.app_secrets : { name = k, valueFrom = arn }]

        # ECS Exec's agent needs a writable root filesystem, so it is read-only unless exec is enabled.
        readonlyRootFilesystem = !var.enable_execute_command
        privileged             = false
        mountPoints = [
          { sourceVolume = "state", containerPath = "/app/var", readOnly = false },
          { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
        ]
        linuxParameters = {
          initProcessEnabled = true
          capabilities       = { drop = ["ALL"] }
        }
        stopTimeout = each.value.stop_timeout

        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.this[each.key].name
            awslogs-region        = local.region
            awslogs-stream-prefix = each.key
            mode                  = "non-blocking"
            max-buffer-size       = "4m"
          }
        }
      },
      { for k, v in { healthCheck = each.value.health_check } : k => v if v != null },
    )
  ], each.key == "api" ? [local.proxy_container] : []))
}

################################################################################
# Services
################################################################################

resource "aws_ecs_service" "api" {
  name                    = "${local.name}-api"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this["api"].arn
  desired_count           = var.api_min_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_execute_command  = var.enable_execute_command
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 180 # model loading and warm-up

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.subnet_ids.private
    security_groups  = [aws_security_group.this["api"].id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "proxy"
    container_port   = var.api_port
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling after creation
  }

  depends_on = [
    aws_lb_listener.https,
    aws_iam_role_policy.execution,
    aws_secretsmanager_secret_version.database_url,
    aws_secretsmanager_secret_version.redis_url,
  ]
}

resource "aws_ecs_service" "worker" {
  name                    = "${local.name}-worker"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this["worker"].arn
  desired_count           = var.worker_min_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_execute_command  = var.enable_execute_command
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.subnet_ids.private
    security_groups  = [aws_security_group.this["worker"].id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [
    aws_iam_role_policy.execution,
    aws_secretsmanager_secret_version.database_url,
    aws_secretsmanager_secret_version.redis_url,
  ]
}

# Exactly one scheduler: a deployment stops the old beat before starting the new one, so the periodic
# tasks are never scheduled twice (a short gap is harmless: both tasks catch up on their next run).
resource "aws_ecs_service" "beat" {
  name                    = "${local.name}-beat"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this["beat"].arn
  desired_count           = 1
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_execute_command  = var.enable_execute_command
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.subnet_ids.private
    security_groups  = [aws_security_group.this["worker"].id]
    assign_public_ip = false
  }

  depends_on = [
    aws_iam_role_policy.execution,
    aws_secretsmanager_secret_version.database_url,
    aws_secretsmanager_secret_version.redis_url,
  ]
}

################################################################################
# Autoscaling: API on average CPU; worker on SQS backlog per running task
# (ApproximateNumberOfMessagesVisible / RunningTaskCount), both target tracking.
################################################################################

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.api_min_count
  max_capacity       = var.api_max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${local.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.api_cpu_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_min_count
  max_capacity       = var.worker_max_count
}

resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${local.name}-worker-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.worker_backlog_per_task_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Jobs waiting in the queue"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.jobs.name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        label       = "Running worker tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Jobs waiting per running worker task"
        expression  = "visible / tasks"
        return_data = true
      }
    }
  }
}
