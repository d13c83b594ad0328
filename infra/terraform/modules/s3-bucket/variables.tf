variable "bucket" {
  description = "Name of the bucket (globally unique)."
  type        = string
}

variable "sse_algorithm" {
  description = "Default encryption: \"aws:kms\" (SSE-KMS with kms_key_arn and an S3 Bucket Key; the policy then refuses uploads that name another encryption or key) or \"AES256\" (SSE-S3, for buckets that AWS log deliveries write to: they support no other)."
  type        = string
  default     = "aws:kms"

  validation {
    condition     = contains(["aws:kms", "AES256"], var.sse_algorithm)
    error_message = "sse_algorithm must be aws:kms or AES256."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of SSE-KMS; null with AES256."
  type        = string
  default     = null
}

variable "deny_outdated_tls" {
  description = "Also refuse requests over TLS older than 1.2 (plain HTTP is always refused)."
  type        = bool
  default     = true
}

variable "lifecycle_rules" {
  description = <<-EOT
    Lifecycle rules, in order. Each: id; prefix (null = the whole bucket); and any of expiration_days,
    expired_object_delete_marker, noncurrent_version_expiration_days, abort_incomplete_multipart_upload_days.
  EOT
  type = list(object({
    id                                     = string
    prefix                                 = optional(string)
    expiration_days                        = optional(number)
    expired_object_delete_marker           = optional(bool)
    noncurrent_version_expiration_days     = optional(number)
    abort_incomplete_multipart_upload_days = optional(number)
  }))

  # What checkov's CKV_AWS_300 would check, had it been able to read the dynamic blocks (main.tf).
  validation {
    condition     = anytrue([for rule in var.lifecycle_rules : rule.abort_incomplete_multipart_upload_days != null])
    error_message = "Some lifecycle rule must abort incomplete multipart uploads: their parts are billed and never expire otherwise."
  }
}

variable "access_log_target" {
  description = "Where S3 server access logs of this bucket go: the log bucket's name and a key prefix. null = no access logs."
  type = object({
    bucket = string
    prefix = string
  })
  default = null
}

variable "object_writers" {
  description = <<-EOT
    Principals allowed s3:PutObject under a key prefix of this bucket (AWS log deliveries), in order;
    the bucket policy grants nothing else. Each: sid, principal_type ("Service" or "AWS"), principals,
    key_prefix, and optional IAM conditions (test, variable, values).
  EOT
  type = list(object({
    sid            = string
    principal_type = string
    principals     = list(string)
    key_prefix     = string
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = []
}
