#!/bin/bash
# cloud-init user data for an EC2 instance running foodpipe with Docker Compose
# (Amazon Linux 2023 or Ubuntu 22.04/24.04). It installs Docker and the Compose
# plugin, clones the repository and starts the stack with the small-box profile
# and CloudWatch logging. Set REPO_URL (and REF) before pasting it into
# "User data", or pass them in the environment. Logs: /var/log/cloud-init-output.log.
set -euo pipefail

REPO_URL="${REPO_URL:-https://github.com/YOUR-ORG/foodpipe.git}"
REF="${REF:-main}"
DIR=/opt/foodpipe

if command -v dnf >/dev/null; then
  # Amazon Linux 2023: Docker from the distribution, Compose and Buildx as CLI plugins.
  dnf install -y docker git
  mkdir -p /usr/local/lib/docker/cli-plugins
  arch="$(uname -m)"
  curl -fsSL "https://github.com/docker/compose/releases/latest/download/docker-compose-linux-${arch}" \
    -o /usr/local/lib/docker/cli-plugins/docker-compose
  chmod +x /usr/local/lib/docker/cli-plugins/docker-compose
  case "$arch" in x86_64) barch=amd64 ;; aarch64) barch=arm64 ;; *) barch="$arch" ;; esac
  bver="$(curl -fsSL https://api.github.com/repos/docker/buildx/releases/latest | sed -n 's/.*"tag_name": *"\(v[^"]*\)".*/\1/p')"
  curl -fsSL "https://github.com/docker/buildx/releases/download/${bver}/buildx-${bver}.linux-${barch}" \
    -o /usr/local/lib/docker/cli-plugins/docker-buildx
  chmod +x /usr/local/lib/docker/cli-plugins/docker-buildx
else
  # Ubuntu: Docker's own packages, which include the Compose and Buildx plugins.
  apt-get update -q
  apt-get install -y -q ca-certificates curl git
  install -m 0755 -d /etc/apt/keyrings
  curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc
  . /etc/os-release
  echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu ${VERSION_CODENAME} stable" \
    > /etc/apt/sources.list.d/docker.list
  apt-get update -q
  apt-get install -y -q docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
fi
systemctl enable --now docker

# The region, for the awslogs driver, from the instance metadata service (IMDSv2).
token="$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')"
AWS_REGION="$(curl -fsS -H "X-aws-ec2-metadata-token: ${token}" http://169.254.169.254/latest/meta-data/placement/region)"
export AWS_REGION

if [ ! -d "$DIR/.git" ]; then
  git clone --depth 1 --branch "$REF" "$REPO_URL" "$DIR"
fi
cd "$DIR"

# A database password of this instance's own, kept out of the repository.
if [ ! -f "$DIR/.compose.env" ]; then
  umask 077
  echo "POSTGRES_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" > "$DIR/.compose.env"
fi

docker compose --env-file "$DIR/.compose.env" \
  -f docker-compose.yml -f docker-compose.small.yml -f docker-compose.aws.yml \
  up -d --build
