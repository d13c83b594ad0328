################################################################################
# Secrets Manager, every secret encrypted with the CMK.
#
# Generated here, once (Secrets Manager's own generator, then ignore_changes keeps the first value):
#   db-password, redis-auth-token, api-key-pepper.
# Composed here from those and the endpoints, and the only database/Redis secrets the tasks can read:
#   database-url, redis-url.
# Put by an operator, never through Terraform (so they are never in state or in a tfvars file):
#   stripe-api-key, stripe-webhook-secret  (aws secretsmanager put-secret-value, see README.md).
#
# Rotation: none of these rotate automatically (see the checkov skips for why). A generated secret is
# rotated with `terraform apply -replace='aws_secretsmanager_secret_version.generated["<name>"]'`, which
# writes a new value, updates RDS or Redis and the composed URL; then force a new ECS deployment. Stripe
# secrets are rolled in the Stripe dashboard and put again. The pepper must not be rotated without a
# re-hash plan: every stored API key hash depends on it.
################################################################################

locals {
  secrets = {
    db_password           = "Master password of the Emoscope PostgreSQL instance (generated)"
    database_url          = "DATABASE_URL of the Emoscope app: postgresql://, TLS required (composed)"
    redis_auth_token      = "AUTH token of the Emoscope Redis replication group (generated)"
    redis_url             = "REDIS_URL of the Emoscope app: rediss:// with the AUTH token (composed)"
    api_key_pepper        = "EMOSCOPE_API_KEY_PEPPER: server-side secret of the API key hashes (generated)"
    stripe_api_key        = "STRIPE_API_KEY (put by an operator)"
    stripe_webhook_secret = "STRIPE_WEBHOOK_SECRET (put by an operator)"
  }
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: the URL secrets are derived from the generated ones and are rewritten by Terraform when those are replaced (procedure in the header of secrets.tf); Stripe keys are rolled in Stripe; rotating the pepper invalidates every API key hash.
  for_each = local.secrets

  name                    = "${local.name}/${replace(each.key, "_", "-")}"
  description             = each.value
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

# Alphanumeric only: these values go into URLs (no escaping needed) and Redis AUTH forbids some symbols.
locals {
  generated_secret_lengths = {
    db_password      = 40
    redis_auth_token = 64
    api_key_pepper   = 64
  }
}

data "aws_secretsmanager_random_password" "this" {
  for_each = local.generated_secret_lengths

  password_length     = each.value
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = local.generated_secret_lengths

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = data.aws_secretsmanager_random_password.this[each.key].random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id = aws_secretsmanager_secret.this["database_url"].id
  secret_string = format(
    "postgresql://%s@%s:%d/%s?sslmode=require",
    join(":", [aws_db_instance.this.username, aws_secretsmanager_secret_version.generated["db_password"].secret_string]),
    aws_db_instance.this.address,
    aws_db_instance.this.port,
    aws_db_instance.this.db_name,
  )
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id = aws_secretsmanager_secret.this["redis_url"].id
  secret_string = format(
    "rediss://:%s@%s:%d/0",
    aws_secretsmanager_secret_version.generated["redis_auth_token"].secret_string,
    aws_elasticache_replication_group.this.primary_endpoint_address,
    aws_elasticache_replication_group.this.port,
  )
}
