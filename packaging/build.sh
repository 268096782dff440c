#!/usr/bin/env bash
# Build dist/loupe/ (the one-folder bundle) and dist/loupe-VERSION-linux-x86_64.tar.gz.
# Needs the venv with the CPU build of torch and PyInstaller (./dev package installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
version=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
"$PYTHON" -c 'import torch, sys; sys.exit("torch is a CUDA build: the bundle carries the CPU build" if torch.version.cuda else 0)'
start=$(date +%s)
PYTHONPATH=$PWD "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/loupe.spec
archive=dist/loupe-$version-linux-x86_64.tar.gz
tar -C dist -czf "$archive" loupe
echo "built dist/loupe and $archive in $(( $(date +%s) - start )) s"
du -sh dist/loupe "$archive"
