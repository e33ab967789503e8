#!/bin/sh
# Installs the host-side helper daemons Berth's VM needs, idempotently:
#   vhost-device-vsock (hybrid vsock for QEMU's vhost-user-vsock) and virtiofsd (folder sharing),
# plus qemu-img, and what the arm64 guest needs (vm-image/build.sh --arch arm64: QEMU for aarch64,
# the cross gcc that links its agent, user-mode QEMU for its busybox applet list).
# Tools go to $BERTH_TOOLS (default /root/.cache/berth/tools, binaries in bin/).
set -eu

TOOLS="${BERTH_TOOLS:-/root/.cache/berth/tools}"
VSOCK_VERSION="${VHOST_DEVICE_VSOCK_VERSION:-0.3.0}"
VIRTIOFSD_VERSION="${VIRTIOFSD_VERSION:-1.14.0}"

need_apt=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_apt="$need_apt qemu-system-x86"
command -v qemu-img >/dev/null 2>&1 || need_apt="$need_apt qemu-utils"
command -v qemu-system-aarch64 >/dev/null 2>&1 || need_apt="$need_apt qemu-system-arm"
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt="$need_apt gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt="$need_apt qemu-user"
[ -e /usr/include/seccomp.h ] || need_apt="$need_apt libseccomp-dev"
[ -e /usr/include/cap-ng.h ] || need_apt="$need_apt libcap-ng-dev"
# The system emulators must come with the qemu-utils of their own release: a machine whose
# qemu-utils is a newer backport (it declares Breaks on older qemu-system-common) gets the
# distribution's qemu-utils back in the same transaction, or apt refuses both.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2}'; }
matching_utils() {
    case "$need_apt" in *qemu-system*) ;; *) return 0 ;; esac
    have=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    want=$(candidate qemu-system-x86)
    if [ -n "$have" ] && [ -n "$want" ] && [ "$want" != "(none)" ] && [ "$have" != "$want" ]; then
        echo "qemu-utils=$want"
    fi
}
apt_install() {
    extra=$(matching_utils)
    echo "install-vm-tools: apt-get install$need_apt $extra"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades $need_apt $extra
}
if [ -n "$need_apt" ]; then
    apt_install || { apt-get update -q && apt_install; }
fi

install_crate() { # name version
    if [ -x "$TOOLS/bin/$1" ] && "$TOOLS/bin/$1" --version 2>/dev/null | grep -q "$2"; then
        echo "install-vm-tools: $1 $2 already installed"
        return
    fi
    echo "install-vm-tools: cargo install $1 $2"
    cargo install --locked "$1" --version "$2" --root "$TOOLS"
}

install_crate vhost-device-vsock "$VSOCK_VERSION"
install_crate virtiofsd "$VIRTIOFSD_VERSION"
echo "install-vm-tools: tools in $TOOLS/bin"
