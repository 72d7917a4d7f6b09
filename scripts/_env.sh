# Shared by scripts/up and scripts/test: make sure uv and the locked environment are installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
apt_install() {  # Debian packages, as root or through sudo
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# uv: on PATH, else where pip --user puts it, else installed there; where the system's Python refuses
# pip (PEP 668: Debian 12, Ubuntu 23.04 and later) or has none, into a venv of its own.
UV_VENV="$HOME/.local/share/dalgo-uv"
export PATH="$HOME/.local/bin:$UV_VENV/bin:$PATH"
install_uv() {
  python3 -m pip install --quiet --user uv 2>/dev/null && return
  python3 -m pip install --quiet uv 2>/dev/null && return
  python3 -m venv "$UV_VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$UV_VENV"; }
  "$UV_VENV/bin/pip" install --quiet uv
}
command -v uv >/dev/null 2>&1 || install_uv
# The interpreter: the operating system's python3 when it is 3.11 or newer. Debian and Ubuntu build it with
# profile-guided optimization and LTO; a Python compiled without them (pyenv's default build, which a
# python3 earlier on PATH may be) runs the API a quarter slower: bench/api_fleet.py's log pages, 470 req/s
# against 630 on the same 2 cores. UV_PYTHON, if set, chooses instead. uv recreates .venv when it changes.
if [ -z "${UV_PYTHON:-}" ] && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  export UV_PYTHON=/usr/bin/python3
fi
UV_COMPILE_BYTECODE=1 uv sync --frozen --quiet
# bubblewrap: the sandbox tenant code (dbt, connectors, git) runs in
command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap
export PATH="$PWD/.venv/bin:$PATH"
