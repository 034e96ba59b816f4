#!/bin/bash
# The whole test suite: a warnings-as-errors build and an
# AddressSanitizer/UndefinedBehaviorSanitizer build, each running every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

run_suite() {
	local dir=$1
	shift
	cmake -S . -B "$dir" -DVHCA_WERROR=ON "$@"
	cmake --build "$dir" -j"$(nproc)"
	ctest --test-dir "$dir" --output-on-failure --timeout 600
}

run_suite build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite build/sanitize -DCMAKE_BUILD_TYPE=Debug -DVHCA_SANITIZE=ON
