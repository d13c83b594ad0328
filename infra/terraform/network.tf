################################################################################
# VPC over two availability zones: public subnets (load balancer, NAT gateways), private subnets
# (Fargate tasks, outbound through NAT) and database subnets (RDS, Redis; no route out at all).
################################################################################

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

# The default security group of the VPC allows nothing; every resource gets its own group below.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${local.name}-default-deny-all" }
}

# Three tiers of one subnet per zone, each tier two /20s of the VPC (netnum = first + zone index).
# Keys are "<tier>-<zone index>": the zone index is the count index these subnets had (migrations.tf).
locals {
  subnet_tiers = {
    public   = 0
    private  = 2
    database = 4
  }
  subnets = {
    for pair in setproduct(keys(local.subnet_tiers), range(length(local.azs))) :
    "${pair[0]}-${pair[1]}" => { tier = pair[0], zone = pair[1] }
  }
  subnet_ids = {
    for tier in keys(local.subnet_tiers) :
    tier => [for zone in range(length(local.azs)) : aws_subnet.this["${tier}-${zone}"].id]
  }
}

resource "aws_subnet" "this" {
  for_each = local.subnets

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[each.value.zone]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, local.subnet_tiers[each.value.tier] + each.value.zone)
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-${each.value.tier}-${local.azs[each.value.zone]}", Tier = each.value.tier }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = local.name }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${local.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

locals {
  nat_count = var.single_nat_gateway ? 1 : length(local.azs)
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"

  tags = { Name = "${local.name}-nat-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = local.subnet_ids.public[count.index]

  tags = { Name = "${local.name}-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.this]
}

# One route table per zone, so that each zone leaves through its own NAT gateway.
resource "aws_route_table" "private" {
  count = length(local.azs)

  vpc_id = aws_vpc.this.id

  tags = { Name = "${local.name}-private-${local.azs[count.index]}" }
}

resource "aws_route" "private_nat" {
  count = length(local.azs)

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

# Database subnets only reach the VPC itself.
resource "aws_route_table" "database" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${local.name}-database" }
}

# Public subnets share one route table (out through the internet gateway), private subnets each have
# their zone's (out through its NAT gateway), database subnets share one with no route out.
resource "aws_route_table_association" "this" {
  for_each = local.subnets

  subnet_id = aws_subnet.this[each.key].id
  route_table_id = {
    public   = aws_route_table.public.id
    private  = aws_route_table.private[each.value.zone].id
    database = aws_route_table.database.id
  }[each.value.tier]
}

# Media goes to S3 through a gateway endpoint: no NAT data charges, no internet path.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  tags = { Name = "${local.name}-s3" }
}

################################################################################
# VPC flow logs (all traffic) to CloudWatch Logs, encrypted
################################################################################

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.this["flow"].arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60

  tags = { Name = local.name }
}

################################################################################
# Security groups: each allows exactly the traffic of one hop, by security group reference.
################################################################################

resource "aws_security_group" "this" {
  for_each = {
    alb    = "Emoscope load balancer: HTTPS (and HTTP, redirected) from the allowed CIDRs; out only to the API tasks"
    api    = "Emoscope API tasks: in from the load balancer only; out to PostgreSQL, Redis and HTTPS"
    worker = "Emoscope worker tasks: no inbound traffic; out to PostgreSQL, Redis and HTTPS"
    db     = "Emoscope PostgreSQL: in from the API and worker tasks only; no outbound rule"
    redis  = "Emoscope Redis: in from the API and worker tasks only; no outbound rule"
  }

  name_prefix = "${local.name}-${each.key}-"
  description = each.value
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${local.name}-${each.key}" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.this["alb"].id
  description       = "HTTPS from clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a 301 redirect to HTTPS (listener in alb.tf); no request reaches the API over plain HTTP.
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.this["alb"].id
  description       = "HTTP from clients, redirected to HTTPS by the listener"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.this["alb"].id
  description                  = "To the API tasks"
  referenced_security_group_id = aws_security_group.this["api"].id
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
}

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.this["api"].id
  description                  = "From the load balancer"
  referenced_security_group_id = aws_security_group.this["alb"].id
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
}

# The API and worker tasks (their security groups) go out on HTTPS and to PostgreSQL and Redis: a rule
# out of each task group and one into each data store's group, keyed "<tasks>-<store>".
locals {
  app_task_groups = ["api", "worker"]
  data_stores = {
    postgres = { security_group = "db", port = 5432, label = "PostgreSQL" }
    redis    = { security_group = "redis", port = 6379, label = "Redis" }
  }
  app_to_data_store = {
    for pair in setproduct(local.app_task_groups, keys(local.data_stores)) :
    "${pair[0]}-${pair[1]}" => merge(local.data_stores[pair[1]], { app = pair[0] })
  }
}

# HTTPS out: AWS APIs (SQS, Secrets Manager, ECR, CloudWatch Logs; S3 goes through the gateway endpoint)
# and Stripe, whose addresses are not fixed, hence 0.0.0.0/0 on 443 only.
resource "aws_vpc_security_group_egress_rule" "app_https" {
  for_each = toset(local.app_task_groups)

  security_group_id = aws_security_group.this[each.key].id
  description       = "HTTPS to AWS APIs and Stripe"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "app_to_data_store" {
  for_each = local.app_to_data_store

  security_group_id            = aws_security_group.this[each.value.app].id
  description                  = "To ${each.value.label}"
  referenced_security_group_id = aws_security_group.this[each.value.security_group].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "data_store_from_app" {
  for_each = local.app_to_data_store

  security_group_id            = aws_security_group.this[each.value.security_group].id
  description                  = "${each.value.label} from the ${each.value.app} tasks"
  referenced_security_group_id = aws_security_group.this[each.value.app].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}
