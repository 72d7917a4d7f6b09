# Shared by scripts/up and scripts/test: make sure uv and the locked environment are installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
UV_COMPILE_BYTECODE=1 uv sync --frozen --quiet
apt_install() {  # Debian packages, as root or through sudo
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# bubblewrap: the sandbox tenant code (dbt, connectors, git) runs in
command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap
export PATH="$PWD/.venv/bin:$PATH"
