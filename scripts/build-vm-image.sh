#!/bin/bash
# Builds the guest image vhca-vm boots (docs/vm.md), from Debian packages only:
#
#   scripts/build-vm-image.sh [OUTDIR]      (default: build/vm-image)
#
#   OUTDIR/KVER/vmlinux          the kernel of linux-image-amd64, uncompressed
#                                (QEMU enters an ELF vmlinux through PVH,
#                                which skips the decompressor: faster under TCG)
#   OUTDIR/KVER/initramfs.cpio   busybox-static, the modules the boot needs,
#                                /init (mounts the host's / over 9p under a
#                                tmpfs overlay and hands over to vhca-vm)
#   OUTDIR/KVER/modules/         the package's /lib/modules/KVER, depmod'ed;
#                                vhca-vm binds it on /lib/modules/KVER in the
#                                guest, so modprobe works there
#   OUTDIR/current -> KVER
#
# Cached by kernel version: when the kernel linux-image-amd64 depends on is
# already unpacked and the initramfs was built by this very script (its hash
# is in OUTDIR/KVER/image.stamp), nothing is done.  Older kernels are removed
# once a new one is in place.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/vm-image}
self_hash=$(sha256sum "$0" | cut -d' ' -f1)

log() { echo "build-vm-image: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb depmod readelf sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox is missing (package busybox-static)"
# The initramfs has no libc: a dynamically linked busybox cannot run there.
if LC_ALL=C readelf -l "$busybox" | grep -q 'program interpreter'; then
	die "$busybox is linked dynamically; install busybox-static"
fi

# ---- which kernel -----------------------------------------------------------

kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg=$(kernel_package)
if [[ -z $pkg ]] && ((EUID == 0)); then
	log "apt-get update (linux-image-amd64 is unknown to apt)"
	apt-get update >/dev/null
	pkg=$(kernel_package)
fi
if [[ -z $pkg ]]; then
	# Offline and apt knows nothing: an image built before still serves.
	[[ -e $out/current/vmlinux ]] ||
		die "apt does not know linux-image-amd64 (run apt-get update as root)"
	log "apt does not know linux-image-amd64; keeping $(readlink "$out/current")"
	exit 0
fi
kver=${pkg#linux-image-}
dir=$out/$kver

# ---- the kernel: vmlinux and modules -----------------------------------------

# Cuts the compressed kernel out of a bzImage and decompresses it, as the
# kernel's scripts/extract-vmlinux does: try every offset where a known
# compressor's magic appears until the output is an ELF file.
extract_vmlinux() {
	local image=$1 target=$2 magic cmd offset
	local -a formats=(
		'\xFD7zXZ\x00|xz -dc'
		'\x1F\x8B\x08|gzip -dc'
		'\x28\xB5\x2F\xFD|zstd -dc'
		'\x5D\x00\x00\x00|xz -dc --format=lzma'
		'BZh|bzip2 -dc'
	)
	for entry in "${formats[@]}"; do
		magic=${entry%%|*}
		cmd=${entry#*|}
		command -v "${cmd%% *}" >/dev/null || continue
		for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
			# Trailing bytes after the stream make the decompressor
			# complain; the output is judged by readelf alone.
			tail -c +$((offset + 1)) "$image" | $cmd >"$target" 2>/dev/null || true
			if LC_ALL=C readelf -h "$target" >/dev/null 2>&1; then
				return 0
			fi
		done
	done
	rm -f "$target"
	return 1
}

if [[ ! -e $dir/kernel.done ]]; then
	log "fetching $pkg"
	mkdir -p "$out"
	tmp=$(mktemp -d "$out/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# As root apt would drop to _apt, who cannot write here: stay root.
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
	dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/root"
	[[ -d $tmp/root/lib/modules/$kver ]] || die "$pkg has no /lib/modules/$kver"
	# The package leaves modules.dep to its postinst.
	depmod -b "$tmp/root" "$kver"
	rm -rf "$dir"
	mkdir -p "$dir"
	extract_vmlinux "$tmp/root/boot/vmlinuz-$kver" "$dir/vmlinux" ||
		die "no compressed kernel found in vmlinuz-$kver"
	cp "$tmp/root/boot/config-$kver" "$dir/config"
	mv "$tmp/root/lib/modules/$kver" "$dir/modules"
	rm -rf "$tmp"
	trap - EXIT
	touch "$dir/kernel.done"
fi

# ---- the initramfs ---------------------------------------------------------

if [[ -e $dir/initramfs.cpio && "$(cat "$dir/image.stamp" 2>/dev/null)" == "$self_hash" ]]; then
	ln -sfn "$kver" "$out/current"
	exit 0
fi
log "building the initramfs for $kver"

moddir=$dir/modules
# Groups: boot (always), net (--net), vf (a VF attached).  The VF's guest
# driver uses uio_pci_generic (no VFIO_NOIOMMU in this kernel) and FUSE.
declare -A groups=(
	[virtio_pci]=boot [9pnet_virtio]=boot [9p]=boot [overlay]=boot
	[virtio_console]=boot
	[virtio_net]=net
	[fuse]=vf [uio]=vf [uio_pci_generic]=vf
)

# module name -> path relative to $moddir, from modules.dep ('-' == '_').
declare -A mod_path=() mod_deps=()
while IFS= read -r line; do
	key=${line%%:*}
	base=${key##*/}
	base=${base%%.ko*}
	base=${base//-/_}
	mod_path[$base]=$key
	mod_deps[$base]=${line#*:}
done <"$moddir/modules.dep"

builtin() { grep -qE "/${1//_/[-_]}\.ko\$" "$moddir/modules.builtin"; }

ordered=()
declare -A seen=()
# Depth first: a module's dependencies before it.
visit() {
	local name=$1 group=$2 dep
	[[ -n ${seen[$name]:-} ]] && return
	seen[$name]=$group
	for dep in ${mod_deps[$name]}; do
		dep=${dep##*/}
		dep=${dep%%.ko*}
		visit "${dep//-/_}" "$group"
	done
	ordered+=("$name")
}
# boot first, so a module both need is loaded at boot.
for group in boot net vf; do
	for name in "${!groups[@]}"; do
		[[ ${groups[$name]} == "$group" ]] || continue
		if [[ -z ${mod_path[$name]:-} ]]; then
			builtin "$name" && continue
			die "module $name is neither in $pkg's modules.dep nor built in"
		fi
		visit "$name" "$group"
	done
done

stage=$(mktemp -d "$out/.initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,lower,rw,newroot,modules}
cp "$busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"

: >"$stage/modules/order"
for name in "${ordered[@]}"; do
	src=$moddir/${mod_path[$name]}
	# busybox insmod takes plain ELF: decompress what the package compressed.
	case $src in
	*.ko) cp "$src" "$stage/modules/$name.ko" ;;
	*.ko.xz) xz -dc "$src" >"$stage/modules/$name.ko" ;;
	*.ko.zst) zstd -qdc "$src" >"$stage/modules/$name.ko" ;;
	*.ko.gz) gzip -dc "$src" >"$stage/modules/$name.ko" ;;
	*) die "cannot read module $src" ;;
	esac
	echo "${seen[$name]} $name" >>"$stage/modules/order"
done

cat >"$stage/init" <<'INIT'
#!/bin/sh
# The VM's first process (vhca-vm, docs/vm.md).  The kernel hands unknown
# "name=value" parameters of its command line to us as environment:
#   vhca_init=PATH   vhca-vm on the host, to run as PID 1 once / is the host's
#   vhca_net=1       load the network driver
#   vhca_vf=1        load what the VF's guest driver needs
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
	echo "vhca-vm init: $*" >&2
	poweroff -f
}

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
exec </dev/console >/dev/console 2>&1

while read -r group name; do
	case $group in
	boot) ;;
	net) [ "$vhca_net" = 1 ] || continue ;;
	vf) [ "$vhca_vf" = 1 ] || continue ;;
	esac
	insmod "/modules/$name.ko" || fail "cannot load module $name"
done </modules/order

# The VF's device pins the guest pages it was given (the guest driver
# mlock()s them, as the kernel's umem pins user pages) and DMAs to their
# guest-physical addresses: nothing may move a locked page.  Compaction
# migrates mlock()ed (unevictable) pages unless told not to; NUMA balancing
# migrates pages to the node that touches them; transparent huge pages
# (kernel command line: transparent_hugepage=never) collapse small pages
# into new huge ones.  There is no swap device at all.
sysctl -qw vm.compact_unevictable_allowed=0 || fail "cannot set vm.compact_unevictable_allowed"
sysctl -qw kernel.numa_balancing=0 2>/dev/null || true

# The host's /, read-only (QEMU exports it read-only too), under a tmpfs
# that takes every write: the guest changes nothing of the host.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose \
	hostroot /lower || fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 rw /rw || fail "cannot mount the overlay's tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work \
	root /newroot || fail "cannot mount the overlay"
for fs in proc sys dev; do
	mount --move "/$fs" "/newroot/$fs" || fail "cannot move /$fs"
done

[ -n "$vhca_init" ] || fail "no vhca_init= on the kernel command line"
exec switch_root /newroot "$vhca_init" --guest-init
INIT
chmod 755 "$stage/init"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	"$busybox" cpio -o -H newc -R 0:0 2>/dev/null) >"$dir/initramfs.cpio.new"
mv "$dir/initramfs.cpio.new" "$dir/initramfs.cpio"
echo "$self_hash" >"$dir/image.stamp"
rm -rf "$stage"
trap - EXIT

ln -sfn "$kver" "$out/current"
# One kernel is enough: drop those of older packages.
for old in "$out"/*/; do
	old=${old%/}
	[[ -L $old || ${old##*/} == "$kver" ]] && continue
	[[ -e $old/vmlinux || -e $old/kernel.done ]] && rm -rf "$old"
done
log "image $dir ready ($(du -sh "$dir" | cut -f1))"
