#!/usr/bin/env bash
# Everything CI checks, in order. Run from anywhere: bash scripts/ci.sh
# Each step prints a header; the first failure stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version
if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

if ! dpkg -s libasound2-dev >/dev/null 2>&1; then
  step "installing ALSA development files (the dev loop's optional sound-card output)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libasound2-dev pkg-config
fi

step "format"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p trio-xtask --all-targets --features audio-device -- -D warnings

step "docs (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "tests (the README's test command)"
cargo xtask test

step "loom: model-check the shared-memory protocols"
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
  cargo test -p trio --tests --release --target-dir target/loom

step "miri: the ring, seqlock, emergency-arena and engine-creation unit tests, and the bridge's lock-free cell"
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup +nightly component add miri rust-src
fi
MIRIFLAGS="-Zmiri-strict-provenance" \
  cargo +nightly miri test -p trio --lib --target-dir target/miri -- ring:: seqlock:: realtime::tests engine::tests::engines_are_built
MIRIFLAGS="-Zmiri-strict-provenance" \
  cargo +nightly miri test -p trio-bridge --lib --target-dir target/miri -- latest::

step "done"
