# Shared by scripts/up and scripts/test: make sure uv and the locked environment are installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
UV_COMPILE_BYTECODE=1 uv sync --frozen --quiet
export PATH="$PWD/.venv/bin:$PATH"
