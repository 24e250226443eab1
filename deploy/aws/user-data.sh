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

# Docker's Compose and Buildx CLI plugins for Amazon Linux, pinned: raise
# these on purpose, never pick up whatever "latest" is on the day an instance
# boots. Each download is checked against the SHA-256 its release publishes
# (COMPOSE_SHA256 / BUILDX_SHA256, when set, are used instead: a digest you
# recorded yourself also guards against a release replaced after the fact).
COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.0}"
BUILDX_VERSION="${BUILDX_VERSION:-v0.29.0}"

# fetch_verified URL SUMS_URL NAME DEST [SHA256]: downloads URL to DEST and
# keeps it only if its SHA-256 is SHA256 or, without one, the one SUMS_URL
# (a checksums file of "digest  name" lines) lists for NAME.
fetch_verified() {
  local url="$1" sums_url="$2" name="$3" dest="$4" want="${5:-}"
  local tmp
  tmp="$(mktemp)"
  curl -fsSL "$url" -o "$tmp"
  if [ -z "$want" ]; then
    want="$(curl -fsSL "$sums_url" | awk -v n="$name" '{ f = $2; sub(/^\*/, "", f) } f == n { print $1; exit }')"
  fi
  if [ -z "$want" ]; then
    echo "user-data: no SHA-256 for $name in $sums_url" >&2; rm -f "$tmp"; return 1
  fi
  if ! echo "$want  $tmp" | sha256sum -c --status -; then
    echo "user-data: $name does not match SHA-256 $want; not installed" >&2; rm -f "$tmp"; return 1
  fi
  install -m 0755 "$tmp" "$dest"
  rm -f "$tmp"
}

main() {
  if command -v dnf >/dev/null; then
    # Amazon Linux 2023: Docker from the distribution, Compose and Buildx as CLI plugins.
    dnf install -y docker git
    local plugins=/usr/local/lib/docker/cli-plugins arch barch
    mkdir -p "$plugins"
    arch="$(uname -m)"
    case "$arch" in x86_64) barch=amd64 ;; aarch64) barch=arm64 ;; *) barch="$arch" ;; esac
    local compose="docker-compose-linux-${arch}" buildx="buildx-${BUILDX_VERSION}.linux-${barch}"
    fetch_verified "https://github.com/docker/compose/releases/download/${COMPOSE_VERSION}/${compose}" \
      "https://github.com/docker/compose/releases/download/${COMPOSE_VERSION}/checksums.txt" \
      "$compose" "$plugins/docker-compose" "${COMPOSE_SHA256:-}"
    fetch_verified "https://github.com/docker/buildx/releases/download/${BUILDX_VERSION}/${buildx}" \
      "https://github.com/docker/buildx/releases/download/${BUILDX_VERSION}/checksums.txt" \
      "$buildx" "$plugins/docker-buildx" "${BUILDX_SHA256:-}"
  else
    # Ubuntu: Docker's own packages, which include the Compose and Buildx
    # plugins, checked by apt against Docker's signing key.
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
  local token
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
}

# Run as user data, the script installs and starts everything. Sourced with
# USER_DATA_SOURCE_ONLY=1 (as deploy/aws_test.go does), it only defines
# fetch_verified and main.
if [ "${USER_DATA_SOURCE_ONLY:-}" != 1 ]; then
  main "$@"
fi
