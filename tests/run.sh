#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The whole test suite: installs what the tests need (Debian packages, the
# VM kernel), then runs every tier with cargo. Run as root on Debian 12:
#   sudo bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup/install.sh

cargo test --all-targets --release --no-fail-fast
