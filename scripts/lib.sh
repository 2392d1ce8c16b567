# Shared by scripts/up and scripts/test: install what is missing on Debian.
# shellcheck shell=bash

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: apt-get install the packages that are not installed.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing: ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# ensure_rust: a Rust toolchain new enough for the workspace (1.85+).
ensure_rust() {
  [ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo >/dev/null 2>&1; then
    echo "No Rust toolchain found; installing rustup (stable, minimal)." >&2
    ensure_packages curl ca-certificates
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  local minor
  minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
  if [ "$minor" -lt 85 ]; then
    echo "Rust $(rustc --version) is too old; Candor needs 1.85 or newer (rustup update)." >&2
    exit 1
  fi
}

ensure_build_deps() {
  ensure_packages build-essential pkg-config ca-certificates
  ensure_rust
}
