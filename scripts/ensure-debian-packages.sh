#!/usr/bin/env bash
# Install the named Debian packages when their commands are missing. Quiet when all are present.
set -euo pipefail
declare -A probe=( [chromium]=/usr/bin/chromium [mosquitto]=/usr/sbin/mosquitto \
  [nats-server]=/usr/bin/nats-server [prometheus]=/usr/bin/prometheus \
  [prometheus-alertmanager]=/usr/bin/prometheus-alertmanager [postgresql]=/usr/lib/postgresql )
missing=()
for pkg in "$@"; do
  path=${probe[$pkg]:-}
  if [[ -n "$path" && -e "$path" ]]; then continue; fi
  if [[ -z "$path" ]] && dpkg -s "$pkg" >/dev/null 2>&1; then continue; fi
  missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
