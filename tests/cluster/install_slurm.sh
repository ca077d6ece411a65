#!/usr/bin/env bash
# Install the Debian packages of a single-node SLURM (for tests/cluster/start_slurm.sh), unless
# they are there already. Needs root and apt (Debian or Ubuntu). Exits non-zero, saying why on its
# last line of stderr, when they cannot be installed.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install_slurm: ${PACKAGES[*]} already installed"
    exit 0
fi

fail() { echo "install_slurm: cannot install ${missing[*]}: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "not root"
command -v apt-get >/dev/null || fail "no apt-get on this machine"

echo "install_slurm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || fail "apt-get update failed (no network or no package mirror?)"
apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "apt-get install failed"
