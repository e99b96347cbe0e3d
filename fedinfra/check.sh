#!/usr/bin/env bash
# fedstack host check for bring-your-own hosts with `provision: false`: the administrator
# forbids changes, so fedstack only verifies that what it needs is there and changes nothing.
# Run as `bash -s` with settings + this script on stdin. Exit 1 with one clear line on stderr
# naming everything that is missing.
set -euo pipefail

missing=()
command -v docker >/dev/null 2>&1 || missing+=("docker (the Docker engine CLI)")
command -v python3 >/dev/null 2>&1 || missing+=("python3")
command -v featurecloud >/dev/null 2>&1 || missing+=("featurecloud (pip package featurecloud, on PATH)")

if [ "${#missing[@]}" -gt 0 ]; then
  printf 'fedstack-check: %s lacks: %s (provision: false, so fedstack installs nothing; ask its administrator)\n' \
    "$(hostname)" "$(
      IFS=','
      echo "${missing[*]}"
    )" >&2
  exit 1
fi
echo "fedstack-check: docker, python3 and featurecloud present on $(hostname)"
