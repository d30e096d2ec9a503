#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/netops/logfwdr: run it on a copy of the
# files git knows (tracked or new, not ignored), so virtualenvs and caches stay out.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
dest=$repo/.build/sanity/ansible_collections/netops/logfwdr
rm -rf "$dest" && mkdir -p "$dest"
(cd "$repo" || exit 1; git ls-files -co --exclude-standard -z | { xargs -0 -I{} cp --parents -P {} "$dest"/ 2>/dev/null || true; })
# ansible-test fetches a pip bootstrap script from outside the package registries; use ours
cache=~/.ansible/test/cache
mkdir -p "$cache"
for v in 24_2 25_3; do cp "$repo/.ci/ansible-test-get-pip.py" "$cache/get_pip_$v.py"; done
cd "$dest"
git init -q . && git add -A
PATH=$venv/bin:$PATH ansible-test sanity --python 3.11 --local --color no "$@"
