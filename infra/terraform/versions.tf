terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }

  # State holds generated secrets (database password, Redis token, pepper): keep it in an encrypted
  # remote backend. See README.md ("State") for the backend.tf to add; nothing here forces one, so that
  # `terraform validate` and the tests run without AWS.
}
