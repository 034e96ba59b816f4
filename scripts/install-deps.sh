#!/bin/bash
# Installs what vhca needs to build, test and run its demo (Debian 12),
# and builds the guest image vhca-vm boots (scripts/build-vm-image.sh).
set -euo pipefail

packages=(
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libibverbs-dev ibverbs-utils ibverbs-providers perftest
	librdmacm-dev rdmacm-utils libfabric-bin
	libfuse3-dev fuse3 libnl-3-dev libnl-route-3-dev
	openmpi-bin libopenmpi-dev libucx0 libucx-dev gnuplot-nox
	iproute2 procps util-linux libssl-dev
	qemu-system-x86 busybox-static kmod xz-utils
)

missing=()
for pkg in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$pkg")
done

if ((${#missing[@]})); then
	if ((EUID != 0)); then
		echo "install-deps: run as root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The VM image (a Debian kernel, a busybox initramfs): cached, a no-op when
# it is up to date.
bash "$(dirname "$0")/build-vm-image.sh"
