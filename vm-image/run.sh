#!/usr/bin/env bash
# Boots the image built by build.sh under QEMU for development: serial console on stdout, a
# qcow2 data disk (created when missing), user networking. Ctrl-A X quits QEMU. TCG unless
# BERTH_KVM=1.
#
#   vm-image/run.sh [--data disk.qcow2] [--size 8G] [--machine q35|microvm] [--append "args"]
#                   [-- extra qemu args]
set -euo pipefail
CACHE=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}
OUT=$CACHE/out
data=$CACHE/dev-data.qcow2
size=8G
machine=q35
append=
while [ $# -gt 0 ]; do
    case $1 in
    --data) data=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -f "$data" ] || qemu-img create -q -f qcow2 "$data" "$size"
# KVM only on request: on some hosts /dev/kvm opens but guests hang (docs/vm-image.md).
accel=tcg
if [ "${BERTH_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then accel=kvm:tcg; fi
dev=pci
extra=
if [ "$machine" = microvm ]; then
    dev=device
    extra="tsc_early_khz=$(awk '/cpu MHz/{printf "%d\n", $4*1000; exit}' /proc/cpuinfo)"
fi
exec qemu-system-x86_64 -machine "$machine,accel=$accel" -nodefaults -no-user-config \
    -display none -no-reboot -m 1024 -smp 2 -serial mon:stdio \
    -kernel "$OUT/vmlinux" -initrd "$OUT/initrd.img" \
    -append "$(cat "$OUT/cmdline") berth.time=$(date +%s) $extra $append" \
    -drive "file=$data,format=qcow2,if=none,id=data,cache=unsafe" \
    -device "virtio-blk-$dev,drive=data,serial=berth-data" \
    -drive "file=$OUT/rootfs.img,format=raw,if=none,id=root,readonly=on" \
    -device "virtio-blk-$dev,drive=root,serial=berth-root" \
    -netdev user,id=net0 -device "virtio-net-$dev,netdev=net0" \
    -device "virtio-rng-$dev" "$@"
