output "id" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "lifecycle_rules" {
  description = "Lifecycle rules as applied (the tests read the expiry from them)."
  value       = aws_s3_bucket_lifecycle_configuration.this.rule
}
