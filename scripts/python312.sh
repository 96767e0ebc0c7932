#!/usr/bin/env bash
# The path of the newest Python 3.12 or later on this machine (Django 6 needs one): on PATH, else
# one that pyenv installed (our Debian 12 machines have 3.11 as python3, and pyenv's 3.12 and 3.13).
pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
for python in python3.14 python3.13 python3.12 \
    $(ls -d "$pyenv_root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
  # A pyenv shim on PATH names a version it may not run: ask the interpreter itself.
  if "$python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    "$python" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "no Python 3.12 or later found for Django 6 (install python3.13, or give PYTHON=/path/to/python3.13)" >&2
exit 1
