#!/usr/bin/env bash
# Real-host tests: builds the release bundles of the example instrument (build.yaml) and
# the example effect (examples/*/build.yaml) and drives them in third-party hosts
# (pedalboard, DawDreamer, Ardour's VST3 scanner).
# Installs what it needs: PyPI packages pinned in tests/hosts/requirements.txt into .venv/,
# and Debian's ardour package for its VST3 scanner.
# Run from anywhere: bash scripts/real_hosts.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/hosts/requirements.txt

# Ardour's VST3 scanner, from Debian's ardour package (needs root for apt-get).
if [ ! -x /usr/lib/ardour7/ardour-vst3-scanner ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ardour >/dev/null
fi

bundle_report=$(cargo xtask bundle --release)
printf '%s\n' "$bundle_report"
bundle_line=$(printf '%s\n' "$bundle_report" | grep '^bundle: ')
bundle=${bundle_line#bundle: }
# The example effect: the first examples/*/build.yaml of kind effect.
effect_manifest=$(grep -l '^ *kind: *effect' examples/*/build.yaml | head -n 1)
effect_report=$(cargo xtask bundle --release --manifest "$effect_manifest")
printf '%s\n' "$effect_report"
effect_line=$(printf '%s\n' "$effect_report" | grep '^bundle: ')
effect_bundle=${effect_line#bundle: }
cargo build --quiet -p integration --bin param-dump
cargo build --quiet -p trio-host
target=$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

TRIO_BUNDLE="$bundle" TRIO_EFFECT_BUNDLE="$effect_bundle" TRIO_PARAM_DUMP="$target/debug/param-dump" \
  TRIO_HOST="$target/debug/trio-host" \
  .venv/bin/python -m pytest -q -s tests/hosts "$@"
