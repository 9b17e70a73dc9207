#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need: checks
# each with dpkg -s and asks apt-get only for what is missing. Idempotent.
set -euo pipefail

pkgs=(
	# build
	git make gcc ca-certificates cpio
	# network tests: namespaces, bridges, netem, captures
	iproute2 iptables ethtool tcpdump bridge-utils procps psmisc
	# real clients
	curl lftp fio libnbd-bin nbdkit qemu-utils iputils-ping netcat-openbsd
	# load generator for the benchmarks
	wrk
	# disks and boot media
	dosfstools gdisk mtools fdisk systemd-boot-efi isolinux syslinux-common pxelinux
	# vdisk: loop devices for the block-device tests (losetup)
	mount
	binutils dpkg apt
	# boot tests (TCG only)
	qemu-system-x86 ovmf ipxe-qemu
	# hwcheck: PCI names for display; dmidecode as the reference SMBIOS decoder in tests
	pci.ids dmidecode
	# manager: the page in headless Chromium, real alert receivers (snmptrapd,
	# aiosmtpd with STARTTLS), snmptranslate for the MIB, promtool for metrics
	chromium snmptrapd snmp python3-aiosmtpd prometheus
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg -s "$p" >/dev/null 2>&1; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing Debian packages (run as root to install): ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
