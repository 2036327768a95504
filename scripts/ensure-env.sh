#!/usr/bin/env bash
# Create .env from .env.example on first use, with freshly generated secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env ] && exit 0
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
sed -e "s|^SANDBOX_MANAGER_TOKEN=.*|SANDBOX_MANAGER_TOKEN=$(secret)|" \
    -e "s|^AIOS_API_TOKEN=.*|AIOS_API_TOKEN=$(secret)|" \
    -e "s|^SECRET_KEY=.*|SECRET_KEY=$(secret)|" \
    -e "s|^FLOWER_BASIC_AUTH=.*|FLOWER_BASIC_AUTH=admin:$(secret)|" .env.example > .env
chmod 600 .env
echo "created .env with generated tokens"
