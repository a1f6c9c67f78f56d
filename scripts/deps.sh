#!/usr/bin/env bash
# Installs what building and testing OpsLens needs on Debian/Ubuntu, skipping what is present.
# Sourced by scripts/run and scripts/test; safe to run again. Always: the compiler and the
# system libraries of the desktop shell (Tauri: WebKitGTK, GTK, app indicator, rsvg, xdo) and of
# screen capture (xcap: PipeWire, clang for its bindings, GBM). With OPSLENS_UI_TESTS=1 (set by
# scripts/test) it also installs what the browser and desktop tests need: Chromium, the sqlite3
# CLI, Node.js + npm and the npm packages of ui/ (`npm ci`), the MCP Inspector, and a virtual display with a
# window manager and X tools (Xvfb, xauth, xdotool, xprop, ImageMagick, a session bus, openbox).
set -euo pipefail

# libdbus-1-dev: the OS keychain (Secret Service) support of the integrations crate.
apt_pkgs=(build-essential pkg-config file curl ca-certificates libdbus-1-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  libpipewire-0.3-dev libclang-dev libgbm-dev)
if [ "${OPSLENS_UI_TESTS:-0}" = 1 ]; then
  apt_pkgs+=(chromium sqlite3)
  apt_pkgs+=(xvfb xauth x11-utils xdotool imagemagick dbus-x11 openbox)
  command -v npm >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
  # scripts/contract makes a venv for schemathesis.
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_pkgs+=(python3 python3-venv)
fi
need_apt=()
for pkg in "${apt_pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true

if [ "${OPSLENS_UI_TESTS:-0}" = 1 ]; then
  # npm ci only when the lock file changed since the last install.
  if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    (cd ui && npm ci --no-audit --no-fund)
  fi
  # The official MCP Inspector (its CLI drives `opslens mcp` in scripts/mcp-inspector), pinned,
  # in its own folder: it is a test tool, not a dependency of the UI.
  scripts/mcp-inspector --install
fi
