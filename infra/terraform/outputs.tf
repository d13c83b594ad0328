output "alb_dns_name" {
  description = "DNS name of the load balancer; point the API's hostname (the ACM certificate's name) at it."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone id of the load balancer, for an alias record."
  value       = aws_lb.this.zone_id
}

output "ecr_repository_url" {
  description = "ECR repository to push the image to (docker push <url>:<image_tag>)."
  value       = aws_ecr_repository.this.repository_url
}

output "container_image" {
  description = "Image the API and worker tasks run (repository URL and var.image_tag)."
  value       = local.image
}

output "image_tag" {
  description = "The image_tag variable, echoed."
  value       = var.image_tag
}

output "ecs_cluster_name" {
  description = "ECS cluster of the API and worker services."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "ECS service running the API."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "ECS service running the worker."
  value       = aws_ecs_service.worker.name
}

output "beat_service_name" {
  description = "ECS service running the single Celery beat (periodic tasks)."
  value       = aws_ecs_service.beat.name
}

output "s3_bucket" {
  description = "Media and results bucket (the app's S3_BUCKET)."
  value       = module.media_bucket.id
}

output "access_logs_bucket" {
  description = "Bucket of the ALB and S3 access logs (null when enable_access_logs is false)."
  value       = var.enable_access_logs ? module.logs_bucket[0].id : null
}

output "media_retention_hours" {
  description = "EMOSCOPE_MEDIA_RETENTION_HOURS given to the app; the bucket's lifecycle expires objects after as many days / 24."
  value       = var.media_retention_days * 24
}

output "sqs_queue_url" {
  description = "URL of the jobs queue (the app's SQS_QUEUE_URL)."
  value       = aws_sqs_queue.jobs.url
}

output "sqs_dlq_url" {
  description = "URL of the jobs dead-letter queue."
  value       = aws_sqs_queue.jobs_dlq.url
}

output "rds_endpoint" {
  description = "PostgreSQL endpoint, host:port (the full DATABASE_URL is in the database-url secret)."
  value       = aws_db_instance.this.endpoint
}

output "redis_endpoint" {
  description = "Primary endpoint of the Redis replication group (the full REDIS_URL is in the redis-url secret)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "secret_arns" {
  description = "ARN of every secret by name; put the two Stripe values into stripe_api_key and stripe_webhook_secret."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "kms_key_arn" {
  description = "Customer managed key that encrypts the data of this deployment."
  value       = aws_kms_key.this.arn
}

output "alarm_topic_arn" {
  description = "SNS topic the CloudWatch alarms publish to."
  value       = aws_sns_topic.alarms.arn
}

output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets of the tasks (for one-off tasks such as `emoscope-admin migrate`)."
  value       = local.subnet_ids.private
}

output "api_security_group_id" {
  description = "Security group of the API tasks (one-off tasks such as migrations reuse it)."
  value       = aws_security_group.this["api"].id
}

output "task_definition_arns" {
  description = "Task definition ARN of the api and worker containers."
  value       = { for k, t in aws_ecs_task_definition.this : k => t.arn }
}
