#!/usr/bin/env bash
# Proves that a refactoring of infra/terraform (new moved blocks in migrations.tf, a module, for_each)
# replaces nothing in an existing deployment. No AWS account: run from the repository root as
#   infra/terraform/tests/check_refactor.sh BASE_REV        (BASE_REV: the commit before the refactoring)
# 1. State: `terraform test` applies BASE_REV's configuration with the mocked provider of
#    plan.tftest.hcl, then plans this one on the same state (state_key); nothing may be added,
#    destroyed or replaced. (The mock writes no schema defaults into state, so an attribute now set to
#    its default shows as an in-place update here; step 2 shows whether any value really changes.)
# 2. Values: both configurations are planned from an empty state against a local moto server (it
#    answers the data sources: STS, EC2, Secrets Manager); compare_plans.py maps the old addresses
#    through migrations.tf and requires the same planned values, for the defaults and for the optional
#    features switched the other way.
# Needs terraform, the AWS provider under TF_PLUGIN_DIR (default /opt/tf-plugins) and the dev venv.
set -euo pipefail

base=${1:?usage: $0 BASE_REV}
repo=$(git rev-parse --show-toplevel)
plugins=${TF_PLUGIN_DIR:-/opt/tf-plugins}
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0 TF_CLI_CONFIG_FILE=/dev/null
moto_pid=
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/old" "$work/new"
git -C "$repo" archive "$base" infra/terraform | tar -x -C "$work/old" --strip-components=2
cp -r "$repo/infra/terraform/." "$work/new/"
rm -rf "$work"/{old,new}/.terraform* "$work"/{old,new}/*.tfstate*

echo "1. state of $base, planned with this configuration"
state="$work/state"
cp -r "$work/new" "$state" && rm -rf "$state/tests" && mkdir "$state/tests"
cp -r "$work/old" "$state/old_version" && rm -rf "$state/old_version/tests"
# The mocked provider and variables of plan.tftest.hcl, then the two runs.
sed '/^run "/,$d' "$work/new/tests/plan.tftest.hcl" > "$state/tests/migrate.tftest.hcl"
cat >> "$state/tests/migrate.tftest.hcl" <<'HCL'
run "old_version" {
  state_key = "deployment"
  module {
    source = "./old_version"
  }
}

run "this_version" {
  command   = plan
  state_key = "deployment"
}
HCL
(cd "$state" && terraform init -backend=false -plugin-dir="$plugins" -no-color >/dev/null &&
  terraform test -verbose -no-color >test.log 2>&1) || { tail -40 "$state/test.log"; exit 1; }
grep -E "^Plan:" "$state/test.log"
echo "   moved: $(grep -c ' has moved to ' "$state/test.log")"
grep -E "will be updated in-place" "$state/test.log" | sed 's/^ */   updated (see 2.): /' || true
if grep -qE "will be created|will be destroyed|must be replaced" "$state/test.log"; then
  grep -E "will be created|will be destroyed|must be replaced" "$state/test.log"
  exit 1
fi

echo "2. planned values of $base and of this configuration"
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$(dirname "$python")/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
cat >"$work/zz_moto_override.tf" <<HCL
provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "moto"
  secret_key                  = "moto"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    sts            = "http://127.0.0.1:$port"
    ec2            = "http://127.0.0.1:$port"
    secretsmanager = "http://127.0.0.1:$port"
  }
}
HCL
for version in old new; do
  cp "$work/zz_moto_override.tf" "$work/$version/"
  (cd "$work/$version" && terraform init -backend=false -plugin-dir="$plugins" -no-color >/dev/null)
done
sleep 2 # moto's server starting
status=0
for settings in \
  "" \
  "-var enable_access_logs=false -var enable_waf=false -var enable_execute_command=true -var single_nat_gateway=true -var db_multi_az=false -var redis_multi_az=false" \
  "-var aws_region=eu-south-2 -var availability_zones=[\"eu-west-1a\",\"eu-west-1b\"]"; do
  echo "   settings: ${settings:-defaults}"
  for version in old new; do
    # shellcheck disable=SC2086 # $settings is a list of arguments
    (cd "$work/$version" && terraform plan -refresh=false -no-color -out=plan.bin -var aws_region=eu-west-1 \
      -var certificate_arn=arn:aws:acm:eu-west-1:123456789012:certificate/x -var image_tag=abc $settings >plan.log &&
      terraform show -json plan.bin >plan.json) || { tail -30 "$work/$version/plan.log"; exit 1; }
  done
  "$python" "$repo/infra/terraform/tests/compare_plans.py" "$work/old/plan.json" "$work/new/plan.json" \
    "$repo/infra/terraform/migrations.tf" || status=1
done
exit $status
