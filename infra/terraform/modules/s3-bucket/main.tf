# A private S3 bucket as this deployment keeps every bucket: owner-enforced objects, public access
# blocked, versioned, encrypted by default (SSE-KMS with the given key, or SSE-S3), an expiry
# lifecycle, and a bucket policy that refuses plain HTTP. Checkov skips that depend on what a bucket
# holds are written on the module call (../../data.tf), not here.

resource "aws_s3_bucket" "this" {
  bucket        = var.bucket
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.sse_algorithm
      kms_master_key_id = var.kms_key_arn
    }
    # S3 Bucket Keys only apply to SSE-KMS.
    bucket_key_enabled = var.sse_algorithm == "aws:kms" ? true : null
  }

  lifecycle {
    precondition {
      condition     = (var.sse_algorithm == "aws:kms") == (var.kms_key_arn != null)
      error_message = "kms_key_arn is required with aws:kms encryption and must be null with AES256."
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  #checkov:skip=CKV_AWS_300:checkov cannot read the abort rule out of the dynamic blocks below; a validation of var.lifecycle_rules requires one in every bucket.
  bucket = aws_s3_bucket.this.id

  dynamic "rule" {
    for_each = var.lifecycle_rules

    content {
      id     = rule.value.id
      status = "Enabled"

      # No prefix: the rule applies to the whole bucket.
      filter {
        prefix = rule.value.prefix
      }

      dynamic "expiration" {
        for_each = rule.value.expiration_days != null || rule.value.expired_object_delete_marker != null ? [1] : []

        content {
          days                         = rule.value.expiration_days
          expired_object_delete_marker = rule.value.expired_object_delete_marker
        }
      }

      dynamic "noncurrent_version_expiration" {
        for_each = rule.value.noncurrent_version_expiration_days != null ? [1] : []

        content {
          noncurrent_days = rule.value.noncurrent_version_expiration_days
        }
      }

      dynamic "abort_incomplete_multipart_upload" {
        for_each = rule.value.abort_incomplete_multipart_upload_days != null ? [1] : []

        content {
          days_after_initiation = rule.value.abort_incomplete_multipart_upload_days
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_log_target != null ? 1 : 0

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_target.bucket
  target_prefix = var.access_log_target.prefix
}

################################################################################
# Bucket policy: Deny statements first (plain HTTP always; with SSE-KMS, uploads naming another
# encryption or key; optionally TLS older than 1.2), then the object writers the caller allows.
################################################################################

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

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

  # Uploads that name an encryption must name this key (those that name none get the bucket default).
  dynamic "statement" {
    for_each = {
      for sid, condition in {
        DenyOtherEncryption = { variable = "s3:x-amz-server-side-encryption", value = "aws:kms" }
        DenyOtherKmsKeys    = { variable = "s3:x-amz-server-side-encryption-aws-kms-key-id", value = var.kms_key_arn }
      } : sid => condition if var.sse_algorithm == "aws:kms"
    }

    content {
      sid       = statement.key
      effect    = "Deny"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.this.arn}/*"]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "StringNotEqualsIfExists"
        variable = statement.value.variable
        values   = [statement.value.value]
      }
    }
  }

  dynamic "statement" {
    for_each = var.deny_outdated_tls ? [1] : []

    content {
      sid       = "DenyOutdatedTLS"
      effect    = "Deny"
      actions   = ["s3:*"]
      resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "NumericLessThan"
        variable = "s3:TlsVersion"
        values   = ["1.2"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.object_writers

    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.this.arn}/${statement.value.key_prefix}*"]

      principals {
        type        = statement.value.principal_type
        identifiers = statement.value.principals
      }

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
