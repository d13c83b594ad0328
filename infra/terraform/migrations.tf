# Where resources of earlier versions of this configuration live now. An existing deployment's state
# follows these on the next plan, so the refactoring into modules/s3-bucket and for_each replaces
# nothing. Keep them as long as a deployment may still be on a version before them.

# The media bucket and its settings, into modules/s3-bucket (data.tf).

moved {
  from = aws_s3_bucket.media
  to   = module.media_bucket.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_ownership_controls.media
  to   = module.media_bucket.aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.media
  to   = module.media_bucket.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.media
  to   = module.media_bucket.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_versioning.media
  to   = module.media_bucket.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.media
  to   = module.media_bucket.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_logging.media
  to   = module.media_bucket.aws_s3_bucket_logging.this
}

moved {
  from = aws_s3_bucket_policy.media
  to   = module.media_bucket.aws_s3_bucket_policy.this
}

# The log bucket (count = enable_access_logs) and its settings, into modules/s3-bucket.

moved {
  from = aws_s3_bucket.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_ownership_controls.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_versioning.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_policy.logs[0]
  to   = module.logs_bucket[0].aws_s3_bucket_policy.this
}

# The alarms, one resource over local.alarms (monitoring.tf).

moved {
  from = aws_cloudwatch_metric_alarm.alb_5xx
  to   = aws_cloudwatch_metric_alarm.this["alb_5xx"]
}

moved {
  from = aws_cloudwatch_metric_alarm.target_5xx
  to   = aws_cloudwatch_metric_alarm.this["target_5xx"]
}

moved {
  from = aws_cloudwatch_metric_alarm.latency_p95
  to   = aws_cloudwatch_metric_alarm.this["latency_p95"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rds_cpu
  to   = aws_cloudwatch_metric_alarm.this["rds_cpu"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rds_free_storage
  to   = aws_cloudwatch_metric_alarm.this["rds_free_storage"]
}

moved {
  from = aws_cloudwatch_metric_alarm.queue_oldest_age
  to   = aws_cloudwatch_metric_alarm.this["queue_oldest_age"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq_not_empty
  to   = aws_cloudwatch_metric_alarm.this["dlq_not_empty"]
}

# Every log group, one resource over local.log_groups (main.tf).

moved {
  from = aws_cloudwatch_log_group.app["api"]
  to   = aws_cloudwatch_log_group.this["api"]
}

moved {
  from = aws_cloudwatch_log_group.app["worker"]
  to   = aws_cloudwatch_log_group.this["worker"]
}

moved {
  from = aws_cloudwatch_log_group.app["beat"]
  to   = aws_cloudwatch_log_group.this["beat"]
}

moved {
  from = aws_cloudwatch_log_group.app["exec"]
  to   = aws_cloudwatch_log_group.this["exec"]
}

moved {
  from = aws_cloudwatch_log_group.flow_logs
  to   = aws_cloudwatch_log_group.this["flow"]
}

moved {
  from = aws_cloudwatch_log_group.rds["postgres"]
  to   = aws_cloudwatch_log_group.this["postgres"]
}

moved {
  from = aws_cloudwatch_log_group.rds["upgrade"]
  to   = aws_cloudwatch_log_group.this["upgrade"]
}

moved {
  from = aws_cloudwatch_log_group.redis
  to   = aws_cloudwatch_log_group.this["redis"]
}

moved {
  from = aws_cloudwatch_log_group.waf[0]
  to   = aws_cloudwatch_log_group.this["waf"]
}

# Subnets and their route table associations, keyed "<tier>-<zone index>" (network.tf).

moved {
  from = aws_subnet.public[0]
  to   = aws_subnet.this["public-0"]
}

moved {
  from = aws_subnet.public[1]
  to   = aws_subnet.this["public-1"]
}

moved {
  from = aws_subnet.private[0]
  to   = aws_subnet.this["private-0"]
}

moved {
  from = aws_subnet.private[1]
  to   = aws_subnet.this["private-1"]
}

moved {
  from = aws_subnet.database[0]
  to   = aws_subnet.this["database-0"]
}

moved {
  from = aws_subnet.database[1]
  to   = aws_subnet.this["database-1"]
}

moved {
  from = aws_route_table_association.public[0]
  to   = aws_route_table_association.this["public-0"]
}

moved {
  from = aws_route_table_association.public[1]
  to   = aws_route_table_association.this["public-1"]
}

moved {
  from = aws_route_table_association.private[0]
  to   = aws_route_table_association.this["private-0"]
}

moved {
  from = aws_route_table_association.private[1]
  to   = aws_route_table_association.this["private-1"]
}

moved {
  from = aws_route_table_association.database[0]
  to   = aws_route_table_association.this["database-0"]
}

moved {
  from = aws_route_table_association.database[1]
  to   = aws_route_table_association.this["database-1"]
}

# Security groups, one resource over the five hops, and the rules between the tasks and the data stores (network.tf).

moved {
  from = aws_security_group.alb
  to   = aws_security_group.this["alb"]
}

moved {
  from = aws_security_group.api
  to   = aws_security_group.this["api"]
}

moved {
  from = aws_security_group.worker
  to   = aws_security_group.this["worker"]
}

moved {
  from = aws_security_group.db
  to   = aws_security_group.this["db"]
}

moved {
  from = aws_security_group.redis
  to   = aws_security_group.this["redis"]
}

moved {
  from = aws_vpc_security_group_egress_rule.app_postgres["api"]
  to   = aws_vpc_security_group_egress_rule.app_to_data_store["api-postgres"]
}

moved {
  from = aws_vpc_security_group_egress_rule.app_postgres["worker"]
  to   = aws_vpc_security_group_egress_rule.app_to_data_store["worker-postgres"]
}

moved {
  from = aws_vpc_security_group_egress_rule.app_redis["api"]
  to   = aws_vpc_security_group_egress_rule.app_to_data_store["api-redis"]
}

moved {
  from = aws_vpc_security_group_egress_rule.app_redis["worker"]
  to   = aws_vpc_security_group_egress_rule.app_to_data_store["worker-redis"]
}

moved {
  from = aws_vpc_security_group_ingress_rule.db_from_app["api"]
  to   = aws_vpc_security_group_ingress_rule.data_store_from_app["api-postgres"]
}

moved {
  from = aws_vpc_security_group_ingress_rule.db_from_app["worker"]
  to   = aws_vpc_security_group_ingress_rule.data_store_from_app["worker-postgres"]
}

moved {
  from = aws_vpc_security_group_ingress_rule.redis_from_app["api"]
  to   = aws_vpc_security_group_ingress_rule.data_store_from_app["api-redis"]
}

moved {
  from = aws_vpc_security_group_ingress_rule.redis_from_app["worker"]
  to   = aws_vpc_security_group_ingress_rule.data_store_from_app["worker-redis"]
}

# Queue policies and generated secrets, one resource each (data.tf, secrets.tf).

moved {
  from = aws_sqs_queue_policy.jobs
  to   = aws_sqs_queue_policy.tls_only["jobs"]
}

moved {
  from = aws_sqs_queue_policy.jobs_dlq
  to   = aws_sqs_queue_policy.tls_only["jobs_dlq"]
}

moved {
  from = aws_secretsmanager_secret_version.db_password
  to   = aws_secretsmanager_secret_version.generated["db_password"]
}

moved {
  from = aws_secretsmanager_secret_version.redis_auth_token
  to   = aws_secretsmanager_secret_version.generated["redis_auth_token"]
}

moved {
  from = aws_secretsmanager_secret_version.api_key_pepper
  to   = aws_secretsmanager_secret_version.generated["api_key_pepper"]
}
