#!/usr/bin/env bash
# Builds Berth's Linux guest from Debian 12 packages: kernel, initramfs, read-only root image,
# kernel command line and a manifest. See docs/vm-image.md for the artifacts and how to boot them.
#
#   vm-image/build.sh                 build what is missing or out of date (idempotent)
#   vm-image/build.sh --agent         fast path: only re-pack a rebuilt berth-agent
#   vm-image/build.sh --update-lock   re-resolve package versions (rewrites the arch's lock file)
#   vm-image/build.sh --arch arm64    the guest for another architecture (amd64 or arm64; default
#                                     the host's): its own lock file (packages-arm64.lock), apt
#                                     lists and outputs ($BERTH_VM_CACHE/arm64/out), the agent
#                                     cross-built for aarch64-unknown-linux-gnu
#
# Environment: BERTH_VM_CACHE (default /root/.cache/berth/vm-image), BERTH_AGENT_BIN (use this
# agent binary instead of `cargo build --release -p berth-agent`), SOURCE_DATE_EPOCH (mtimes),
# CARGO_TARGET_DIR (passed to cargo).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}
EPOCH=${SOURCE_DATE_EPOCH:-1735689600}
# Fixed identity of the root filesystem, so the image is byte-for-byte reproducible.
ROOT_UUID=4a8f2c1e-0b7d-4e55-9c3a-6d2b1f0e9a71
HOST_ARCH=$(dpkg --print-architecture)
ARCH=$HOST_ARCH

mode=full
update_lock=0
while [ $# -gt 0 ]; do
    case $1 in
    --agent) mode=agent ;;
    --update-lock) update_lock=1 ;;
    --arch)
        [ $# -ge 2 ] || { echo "build.sh: --arch needs amd64 or arm64" >&2; exit 2; }
        ARCH=$2
        shift
        ;;
    --arch=*) ARCH=${1#--arch=} ;;
    -h | --help)
        sed -n '2,15p' "$0"
        exit 0
        ;;
    *)
        echo "build.sh: unknown argument $1" >&2
        exit 2
        ;;
    esac
    shift
done

# Per architecture: Debian's multiarch triplet, Rust's target, the kernel file QEMU boots
# directly (amd64: the PVH ELF vmlinux; arm64: the raw Image the package ships), the serial
# console, and where the lock file and outputs go (amd64 keeps the original layout).
case $ARCH in
amd64)
    ELF_MACHINE="Advanced Micro Devices X86-64"
    MULTIARCH=x86_64-linux-gnu RUST_TARGET=x86_64-unknown-linux-gnu QEMU_USER=qemu-x86_64
    QEMU_SYSTEM=qemu-system-x86_64:qemu-system-x86
    KERNEL_FILE=vmlinux CONSOLE=ttyS0 LOCK=$HERE/packages.lock ARCH_CACHE=$CACHE
    ;;
arm64)
    ELF_MACHINE=AArch64
    MULTIARCH=aarch64-linux-gnu RUST_TARGET=aarch64-unknown-linux-gnu QEMU_USER=qemu-aarch64
    QEMU_SYSTEM=qemu-system-aarch64:qemu-system-arm
    KERNEL_FILE=Image CONSOLE=ttyAMA0 LOCK=$HERE/packages-arm64.lock ARCH_CACHE=$CACHE/arm64
    ;;
*)
    echo "build.sh: unsupported architecture $ARCH (amd64 or arm64)" >&2
    exit 2
    ;;
esac
OUT=$ARCH_CACHE/out
STRIP=strip
if [ "$ARCH" != "$HOST_ARCH" ]; then STRIP=$MULTIARCH-strip; fi
WORK=$ARCH_CACHE/work
DEBS=$ARCH_CACHE/debs
# apt options: the host's own lists for its own architecture; for another one, lists of that
# architecture only, kept in the cache (the host's dpkg and apt state are not touched).
APT_OPTS=()
if [ "$ARCH" != "$HOST_ARCH" ]; then
    APT_OPTS=(-o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH"
        -o "Dir::State::Lists=$ARCH_CACHE/apt/lists" -o "Dir::Cache=$ARCH_CACHE/apt/cache"
        -o "Dir::State::status=$ARCH_CACHE/apt/status" -o Debug::NoLocking=1)
fi

log() { printf 'vm-image: %s\n' "$*" >&2; }
die() {
    printf 'vm-image: error: %s\n' "$*" >&2
    exit 1
}
# Runs a program built for the guest's architecture (through user-mode QEMU when foreign).
guest_exec() {
    if [ "$ARCH" = "$HOST_ARCH" ]; then "$@"; else "$QEMU_USER" "$@"; fi
}
# sha256 of stdin, hex only.
hash_stdin() { sha256sum | cut -d' ' -f1; }
# Lines of a list file without comments and blanks.
list() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"; }
# Sets every mtime under $1 to $EPOCH (symlinks themselves, not their targets).
fix_mtimes() { find "$1" -exec touch -h -d "@$EPOCH" {} +; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, mknod, file ownership)"
mkdir -p "$OUT" "$WORK" "$DEBS"

# --- 0. tools ------------------------------------------------------------------------------
ensure_tools() {
    local missing=() pair cmd pkg
    for pair in "$QEMU_SYSTEM" qemu-img:qemu-utils depmod:kmod cpio:cpio \
        lz4:lz4 mke2fs:e2fsprogs jq:jq strip:binutils readelf:binutils; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null || missing+=("$pkg")
    done
    if [ "$ARCH" != "$HOST_ARCH" ]; then
        # The cross linker and strip, and user-mode QEMU to run the guest's busybox once.
        command -v "$MULTIARCH-gcc" >/dev/null || missing+=("gcc-$MULTIARCH" "libc6-dev-$ARCH-cross")
        command -v "$QEMU_USER" >/dev/null || missing+=(qemu-user)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}" >&2
    fi
}

# --- 1. packages -----------------------------------------------------------------------------
# The apt lists of a foreign architecture, fetched once (and again with --update-lock).
foreign_apt_lists() {
    [ "$ARCH" != "$HOST_ARCH" ] || return 0
    if [ "$update_lock" = 0 ] && [ -d "$ARCH_CACHE/apt/lists" ] &&
        compgen -G "$ARCH_CACHE/apt/lists/*_Packages*" >/dev/null; then
        return
    fi
    log "fetching the $ARCH apt lists"
    mkdir -p "$ARCH_CACHE/apt/lists/partial" "$ARCH_CACHE/apt/cache/archives/partial"
    : >"$ARCH_CACHE/apt/status"
    apt-get "${APT_OPTS[@]}" update -q >&2
}

# The lock file: "name version" per line, the rootfs closure plus the kernel package.
resolve_lock() {
    local empty kpkg kver pkgs
    empty=$(mktemp)
    mapfile -t pkgs < <(list "$HERE/packages.txt")
    log "resolving $ARCH package versions"
    apt-get "${APT_OPTS[@]}" -s -q -o Dir::State::status="$empty" -o Debug::NoLocking=1 \
        --no-install-recommends install "${pkgs[@]}" |
        awk '/^Inst /{v=$3; sub(/^\(/, "", v); print $2, v}' | LC_ALL=C sort >"$LOCK.tmp"
    rm -f "$empty"
    kpkg=$(apt-cache "${APT_OPTS[@]}" depends "linux-image-cloud-$ARCH" |
        awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$kpkg" ] || die "no linux-image-cloud-$ARCH in the apt lists (apt-get update?)"
    kver=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$kpkg" | awk '/^Version:/{print $2; exit}')
    echo "$kpkg $kver" >>"$LOCK.tmp"
    [ -s "$LOCK.tmp" ] || die "package resolution produced nothing"
    mv "$LOCK.tmp" "$LOCK"
}

# Path of the cached .deb for "name version" (empty when not downloaded yet).
deb_path() {
    local f="$DEBS/${1}_${2/:/%3a}_"
    for f in "$f"*.deb; do [ -f "$f" ] && echo "$f"; done
}

download_debs() {
    local name ver want=()
    while read -r name ver; do
        [ -n "$(deb_path "$name" "$ver")" ] || want+=("$name=$ver")
    done <"$LOCK"
    [ ${#want[@]} -eq 0 ] && return
    log "downloading ${#want[@]} packages"
    if ! (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download -q "${want[@]}" >&2 2>/dev/null); then
        apt-get "${APT_OPTS[@]}" update -q >&2
        (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download -q "${want[@]}" >&2) ||
            die "cannot download the locked versions; run build.sh --update-lock"
    fi
}

# --- 2. kernel -------------------------------------------------------------------------------
kernel_pkg() { awk '$1 ~ /^linux-image-/{print $1, $2}' "$LOCK"; }

# Extracts the kernel package and the file QEMU boots directly ($KERNEL_FILE).
build_kernel() {
    local name ver deb dir
    read -r name ver < <(kernel_pkg)
    KVER=${name#linux-image-}
    dir=$WORK/kernel-$KVER-$ver
    KDIR=$dir
    if [ -f "$dir/.done" ]; then return; fi
    deb=$(deb_path "$name" "$ver")
    [ -n "$deb" ] || die "kernel package $name $ver not downloaded"
    log "extracting kernel $KVER ($ver)"
    rm -rf "$dir" && mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir"
    depmod -b "$dir" "$KVER"
    "extract_${ARCH}_kernel" "$dir/boot/vmlinuz-$KVER" "$dir/$KERNEL_FILE"
    touch "$dir/.done"
}

# amd64: the PVH ELF vmlinux, the decompressed payload of the bzImage. The cloud kernel's
# payload is LZ4 (legacy frame, magic 02 21 4c 18); try each match.
extract_amd64_kernel() {
    local vmlinuz=$1 to=$2 off
    # shellcheck disable=SC2013 # byte offsets, one number per line
    for off in $(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | cut -d: -f1); do
        tail -c +$((off + 1)) "$vmlinuz" | lz4 -dc 2>/dev/null >"$to" || true
        if [ "$(head -c 4 "$to" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
            return
        fi
        rm -f "$to"
    done
    die "no LZ4 ELF payload found in $vmlinuz"
}

# arm64: Debian ships the raw Image (its header's magic "ARM\x64" at byte 56), which QEMU loads
# without firmware; a gzip-compressed one is unpacked.
extract_arm64_kernel() {
    local vmlinuz=$1 to=$2
    if [ "$(head -c 2 "$vmlinuz" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
        gzip -dc "$vmlinuz" >"$to"
    else
        cp "$vmlinuz" "$to"
    fi
    [ "$(tail -c +57 "$to" | head -c 4)" = $'ARM\x64' ] || die "$vmlinuz is not an arm64 Image"
}

# Debian's headers of exactly the locked kernel, for the modules built here (KHEADERS).
install_kernel_headers() {
    local name ver hdr
    read -r name ver < <(kernel_pkg)
    hdr=linux-headers-$KVER
    if [ "$(dpkg-query -W -f='${Version}' "$hdr" 2>/dev/null)" != "$ver" ]; then
        log "installing $hdr $ver"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "$hdr=$ver" make >&2 || die "cannot install $hdr=$ver (apt-get update? build.sh --update-lock?)"
    fi
    KHEADERS=/usr/src/$hdr
}

# Modules built here are only for a guest of the host's own architecture: Debian's headers of
# another one ship kbuild's tools built for that one.
cross_kbuild() {
    if [ "$ARCH" != "$HOST_ARCH" ]; then
        log "$1 not built for $ARCH (cross kbuild): $2"
        return 0
    fi
    return 1
}

# The berth_fsnotify module (vm-image/fsnotify/: host file events as fsnotify events, see
# docs/vm-image.md), built against Debian's headers of exactly the locked kernel; sets
# FSNOTIFY_KO (empty when not built).
FSNOTIFY_SRC=$HERE/fsnotify
build_fsnotify_module() {
    local dir
    FSNOTIFY_KO=
    if cross_kbuild berth_fsnotify "the guest re-touches instead"; then return; fi
    install_kernel_headers
    dir=$WORK/fsnotify-$KVER
    FSNOTIFY_KO=$dir/berth_fsnotify.ko
    if [ -f "$FSNOTIFY_KO" ] && [ "$(cat "$dir.key" 2>/dev/null)" = "$(fsnotify_key)" ]; then
        return
    fi
    log "building berth_fsnotify for $KVER"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$FSNOTIFY_SRC/Kbuild" "$FSNOTIFY_SRC/berth_fsnotify.c" "$dir/"
    # The build dir out of the debug info, which the build ID hashes: the same bytes from any cache.
    make -s -C "$KHEADERS" M="$dir" KCFLAGS="-ffile-prefix-map=$dir/=" modules >&2 ||
        die "berth_fsnotify did not build"
    strip --strip-debug "$FSNOTIFY_KO"
    fsnotify_key >"$dir.key"
}
fsnotify_key() { { echo "$KVER"; cat "$FSNOTIFY_SRC/Kbuild" "$FSNOTIFY_SRC/berth_fsnotify.c" "$0"; } | hash_stdin; }

# The kernel's 9P client (9pnet, its fd transport 9pnet_fd, and the 9p filesystem), which Debian's
# cloud kernel leaves out (CONFIG_NET_9P is not set): built from Debian's linux-source of the
# same version against its headers, for shares the host serves over 9P (docs/design/host.md,
# "Shared folders over 9P"). Sets NINEP_KOS (empty when not built).
build_9p_modules() {
    local name ver dir src
    NINEP_KOS=
    if cross_kbuild "the 9p modules" "shares there are virtiofs only"; then return; fi
    install_kernel_headers
    read -r name ver < <(kernel_pkg)
    dir=$WORK/9p-$KVER
    if [ -f "$dir/fs/9p/9p.ko" ] && [ "$(cat "$dir.key" 2>/dev/null)" = "$(ninep_key)" ]; then
        NINEP_KOS="$dir/net/9p/9pnet.ko $dir/net/9p/9pnet_fd.ko $dir/fs/9p/9p.ko"
        return
    fi
    log "building the 9p modules for $KVER from linux-source-6.1 $ver"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && apt-get download "linux-source-6.1=$ver" >&2) || die "cannot download linux-source-6.1=$ver"
    src=$(echo "$dir"/linux-source-6.1_*.deb)
    dpkg-deb --fsys-tarfile "$src" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
        tar -xJ -C "$dir" --strip-components=1 linux-source-6.1/net/9p linux-source-6.1/fs/9p
    rm -f "$src"
    make -s -C "$KHEADERS" M="$dir/net/9p" CONFIG_NET_9P=m CONFIG_NET_9P_FD=m \
        KCFLAGS="-ffile-prefix-map=$dir/=" modules >&2 || die "9pnet did not build"
    make -s -C "$KHEADERS" M="$dir/fs/9p" CONFIG_9P_FS=m KCFLAGS="-ffile-prefix-map=$dir/=" \
        KBUILD_EXTRA_SYMBOLS="$dir/net/9p/Module.symvers" modules >&2 || die "9p did not build"
    NINEP_KOS="$dir/net/9p/9pnet.ko $dir/net/9p/9pnet_fd.ko $dir/fs/9p/9p.ko"
    for ko in $NINEP_KOS; do strip --strip-debug "$ko"; done
    ninep_key >"$dir.key"
}
ninep_key() { { echo "$KVER"; kernel_pkg; cat "$0"; } | hash_stdin; }

# Prints "insmod <path>" lines of a module and its dependencies, dependencies first.
module_closure() {
    modprobe -d "$KDIR" -S "$KVER" --show-depends "$1" 2>/dev/null |
        awk '$1 == "insmod" {print $2}' | sed "s|^$KDIR/lib/modules/$KVER/||"
}

# --- 3. base root filesystem (everything but the agent) --------------------------------------
base_key() {
    {
        cat "$LOCK" "$HERE/packages.exclude" "$HERE/modules.txt" "$0"
        echo "$EPOCH"
        if [ -n "$FSNOTIFY_KO" ]; then sha256sum <"$FSNOTIFY_KO"; fi
        (cd "$HERE/overlay" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    } | hash_stdin
}

build_base() {
    local key root name ver deb m path rel
    key=$(base_key)
    BASE=$WORK/base
    if [ -f "$BASE.key" ] && [ "$(cat "$BASE.key")" = "$key" ] && [ -d "$BASE" ]; then
        log "base root filesystem up to date"
        return
    fi
    log "assembling the base root filesystem"
    root=$WORK/base.tmp
    rm -rf "$root" && mkdir -p "$root/usr"/{bin,sbin,lib,lib64}
    # Merged /usr, as Debian 12 installs it.
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    while read -r name ver; do
        case $name in linux-image-*) continue ;; esac
        if list "$HERE/packages.exclude" | grep -qx "$name"; then continue; fi
        deb=$(deb_path "$name" "$ver")
        [ -n "$deb" ] || die "$name $ver not downloaded"
        dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"
    done <"$LOCK"

    # What the maintainer scripts would have done.
    for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
        ln -sf "xtables-nft-multi" "$root/usr/sbin/$t"
    done
    mkdir -p "$root/etc/ssl/certs"
    find "$root/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
        >"$root/etc/ssl/certs/ca-certificates.crt"
    # busybox applets where Debian ships no program of that name.
    for path in $(guest_exec "$root/usr/bin/busybox" --list-full); do
        name=${path##*/}
        if [ -e "$root/usr/bin/$name" ] || [ -e "$root/usr/sbin/$name" ] ||
            [ -L "$root/usr/bin/$name" ] || [ -L "$root/usr/sbin/$name" ]; then
            continue
        fi
        case $path in
        sbin/* | usr/sbin/*) ln -s ../bin/busybox "$root/usr/sbin/$name" ;;
        *) ln -s busybox "$root/usr/bin/$name" ;;
        esac
    done
    cp -a "$HERE/overlay/." "$root/"
    # Documentation, locales, iconv modules: not needed in the guest (licences are kept).
    rm -rf "$root/usr/share"/{man,info,locale,lintian,bug,doc-base,bash-completion,zsh} \
        "$root/usr/lib/$MULTIARCH/gconv"
    find "$root/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
    find "$root/usr/share/doc" -type l -delete 2>/dev/null || true

    # Kernel modules: the closure of modules.txt, then depmod for modprobe in the guest.
    mkdir -p "$root/lib/modules/$KVER"
    for m in $(list "$HERE/modules.txt"); do
        rel=$(module_closure "$m")
        [ -n "$rel" ] || modinfo -b "$KDIR" -k "$KVER" "$m" >/dev/null 2>&1 ||
            die "kernel module $m not found in $KVER"
        for path in $rel; do
            mkdir -p "$root/lib/modules/$KVER/$(dirname "$path")"
            cp "$KDIR/lib/modules/$KVER/$path" "$root/lib/modules/$KVER/$path"
        done
    done
    cp "$KDIR/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$KVER/"
    # Modules built here, loaded by the agent when it mounts a share (not in /etc/berth/modules).
    if [ -n "$FSNOTIFY_KO$NINEP_KOS" ]; then
        mkdir -p "$root/lib/modules/$KVER/extra"
        cp $FSNOTIFY_KO $NINEP_KOS "$root/lib/modules/$KVER/extra/"
    fi
    depmod -b "$root" "$KVER"
    mkdir -p "$root/etc/berth"
    list "$HERE/modules.txt" >"$root/etc/berth/modules"

    # ldconfig writes its own architecture's cache; a foreign guest's loader finds the
    # libraries in its built-in multiarch directories instead.
    if [ "$ARCH" = "$HOST_ARCH" ]; then ldconfig -r "$root"; fi
    mkdir -p "$root"/{proc,sys,dev,run,tmp,root,mnt,var/lib/berth,var/log,var/tmp}
    chmod 1777 "$root/tmp" "$root/var/tmp"
    ln -sf ../run "$root/var/run"
    ln -sf ../proc/self/mounts "$root/etc/mtab"
    ln -sf ../usr/bin/berth-agent "$root/sbin/init"
    fix_mtimes "$root"
    rm -rf "$BASE" && mv "$root" "$BASE"
    echo "$key" >"$BASE.key"
}

# --- 4. initramfs ----------------------------------------------------------------------------
build_initrd() {
    local key dir m path bb
    bb=$BASE/usr/bin/busybox
    key=$({
        echo "$KVER"
        cat "$HERE/initramfs-modules.txt" "$HERE/initramfs/init" "$0"
        sha256sum <"$bb"
        echo "$EPOCH"
    } | hash_stdin)
    if [ -f "$OUT/initrd.img" ] && [ "$(cat "$WORK/initrd.key" 2>/dev/null)" = "$key" ]; then
        log "initramfs up to date"
        return
    fi
    log "building the initramfs"
    dir=$WORK/initrd.tmp
    rm -rf "$dir" && mkdir -p "$dir"/{bin,dev,proc,sys,mnt,lib/modules}
    cp "$bb" "$dir/bin/busybox"
    for a in sh mount umount mkdir insmod cat sleep switch_root poweroff; do
        ln -s busybox "$dir/bin/$a"
    done
    mknod -m 600 "$dir/dev/console" c 5 1
    cp "$HERE/initramfs/init" "$dir/init"
    chmod 755 "$dir/init"
    : >"$dir/lib/modules/load.list"
    for m in $(list "$HERE/initramfs-modules.txt"); do
        for path in $(module_closure "$m"); do
            grep -qx "${path##*/}" "$dir/lib/modules/load.list" && continue
            cp "$KDIR/lib/modules/$KVER/$path" "$dir/lib/modules/"
            echo "${path##*/}" >>"$dir/lib/modules/load.list"
        done
    done
    fix_mtimes "$dir"
    (cd "$dir" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --reproducible -R 0:0 --quiet) | gzip -n -9 >"$OUT/initrd.img.tmp"
    mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
    echo "$key" >"$WORK/initrd.key"
    rm -rf "$dir"
}

# --- 5. agent --------------------------------------------------------------------------------
# Builds berth-agent for the guest (dynamically linked against the guest's glibc, like the
# host's own build) and prints the binary's path. A foreign guest is cross-built with
# Debian's cross gcc as linker (and C compiler for the crates that build C).
cargo_build_agent() {
    local target_dir=${CARGO_TARGET_DIR:-$REPO/target} t
    if [ "$ARCH" = "$HOST_ARCH" ]; then
        log "cargo build --release -p berth-agent"
        (cd "$REPO" && cargo build --release -p berth-agent >&2)
        echo "$target_dir/release/berth-agent"
        return
    fi
    rustup target list --installed 2>/dev/null | grep -qx "$RUST_TARGET" ||
        rustup target add "$RUST_TARGET" >&2 || die "rustup target add $RUST_TARGET failed"
    t=$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')
    log "cargo build --release -p berth-agent --target $RUST_TARGET"
    (cd "$REPO" && env "CARGO_TARGET_${t}_LINKER=$MULTIARCH-gcc" "CC_${RUST_TARGET//-/_}=$MULTIARCH-gcc" \
        "AR_${RUST_TARGET//-/_}=$MULTIARCH-ar" \
        cargo build --release -p berth-agent --target "$RUST_TARGET" >&2)
    echo "$target_dir/$RUST_TARGET/release/berth-agent"
}

build_agent() {
    local bin lib
    if [ -n "${BERTH_AGENT_BIN:-}" ]; then
        bin=$BERTH_AGENT_BIN
    else
        command -v cargo >/dev/null || die "cargo not found (install Rust) or set BERTH_AGENT_BIN"
        bin=$(cargo_build_agent)
    fi
    [ -x "$bin" ] || die "no agent binary at $bin"
    AGENT_SRC_SHA=$(sha256sum <"$bin" | cut -d' ' -f1)
    "$STRIP" -o "$WORK/berth-agent" "$bin"
    [ "$(readelf -h "$WORK/berth-agent" | awk -F: '/Machine:/{gsub(/^ +/, "", $2); print $2}')" = \
        "$ELF_MACHINE" ] || die "$bin is not a $ELF_MACHINE binary"
    # Every shared library the agent needs must be in the image.
    for lib in $(readelf -d "$WORK/berth-agent" | awk '/NEEDED/{gsub(/[\[\]]/, "", $5); print $5}'); do
        [ -e "$BASE/usr/lib/$MULTIARCH/$lib" ] || [ -e "$BASE/usr/lib64/$lib" ] ||
            die "the agent needs $lib, which is not in the root filesystem"
    done
}

# --- 6. root image ---------------------------------------------------------------------------
build_rootfs() {
    local key root mib
    key=$({
        cat "$BASE.key"
        sha256sum <"$WORK/berth-agent"
    } | hash_stdin)
    if [ -f "$OUT/rootfs.img" ] && [ "$(cat "$WORK/rootfs.key" 2>/dev/null)" = "$key" ]; then
        log "root image up to date"
        return
    fi
    log "building the root image"
    root=$WORK/root.tmp
    rm -rf "$root"
    cp -al "$BASE" "$root"
    install -m 755 "$WORK/berth-agent" "$root/usr/bin/berth-agent"
    touch -d "@$EPOCH" "$root/usr/bin/berth-agent" "$root/usr/bin"
    mib=$(($(du -sm --apparent-size "$root" | cut -f1) * 5 / 4 + 16))
    rm -f "$OUT/rootfs.img.tmp"
    E2FSPROGS_FAKE_TIME=$EPOCH mke2fs -q -F -t ext4 -L berth-root -U "$ROOT_UUID" \
        -E "hash_seed=$ROOT_UUID,root_owner=0:0" -O ^has_journal -m 0 -b 4096 \
        -d "$root" "$OUT/rootfs.img.tmp" "${mib}M"
    # mke2fs -d copies atime and ctime from the source tree, which touch cannot fix: set them.
    (cd "$root" && find . | LC_ALL=C sort) | sed -e 's|^\.||' -e 's|^$|/|' |
        awk -v t="@$EPOCH" '{printf "sif \"%s\" ctime %s\nsif \"%s\" atime %s\n", $0, t, $0, t}' |
        E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f - "$OUT/rootfs.img.tmp" >/dev/null 2>&1
    mv "$OUT/rootfs.img.tmp" "$OUT/rootfs.img"
    echo "$key" >"$WORK/rootfs.key"
    rm -rf "$root"
}

# --- 7. kernel files, cmdline, manifest ------------------------------------------------------
# amd64 also keeps the bzImage as shipped (for boot loaders that want it); the arm64 Image is the
# package's file itself. The command line starts with the architecture's serial console.
install_kernel() {
    cmp -s "$KDIR/$KERNEL_FILE" "$OUT/$KERNEL_FILE" || cp "$KDIR/$KERNEL_FILE" "$OUT/$KERNEL_FILE"
    if [ "$ARCH" = amd64 ]; then
        cmp -s "$KDIR/boot/vmlinuz-$KVER" "$OUT/bzImage" || cp "$KDIR/boot/vmlinuz-$KVER" "$OUT/bzImage"
    fi
    { echo "console=$CONSOLE"; list "$HERE/cmdline"; } | tr '\n' ' ' | sed 's/ $/\n/' >"$OUT/cmdline"
}

write_manifest() {
    local f files=()
    for f in "$KERNEL_FILE" bzImage initrd.img rootfs.img cmdline; do
        if [ -f "$OUT/$f" ]; then files+=("$f"); fi
    done
    {
        for f in "${files[@]}"; do
            printf '%s %s %s\n' "$f" "$(sha256sum <"$OUT/$f" | cut -d' ' -f1)" "$(stat -c %s "$OUT/$f")"
        done
    } | jq -R -s --arg arch "$ARCH" --arg kver "$KVER" --arg epoch "$EPOCH" --arg agent_sha "$AGENT_SRC_SHA" \
        --arg agent_img_sha "$(sha256sum <"$WORK/berth-agent" | cut -d' ' -f1)" \
        --arg cmdline "$(cat "$OUT/cmdline")" --rawfile lock "$LOCK" \
        --rawfile exclude "$HERE/packages.exclude" '
        {
          arch: $arch,
          kernel: $kver,
          cmdline: $cmdline,
          source_date_epoch: ($epoch | tonumber),
          agent: { path: "/usr/bin/berth-agent", sha256: $agent_sha, sha256_stripped: $agent_img_sha },
          artifacts: (split("\n") | map(select(length > 0) | split(" ")
            | { key: .[0], value: { sha256: .[1], size: (.[2] | tonumber) } }) | from_entries),
          packages: ($lock | split("\n") | map(select(length > 0) | split(" ")
            | { name: .[0], version: .[1] })),
          excluded: ($exclude | split("\n") | map(sub("#.*"; "") | select(length > 0)))
        }' >"$OUT/manifest.json.tmp"
    mv "$OUT/manifest.json.tmp" "$OUT/manifest.json"
}

# --- main ------------------------------------------------------------------------------------
start=$(date +%s)
if [ "$mode" = full ]; then
    ensure_tools
    foreign_apt_lists
    if [ "$update_lock" = 1 ] || [ ! -s "$LOCK" ]; then resolve_lock; fi
    download_debs
fi
[ -s "$LOCK" ] || die "no $LOCK: run a full build first"
build_kernel
build_fsnotify_module
build_9p_modules
if [ "$mode" = agent ]; then
    BASE=$WORK/base
    if [ ! -d "$BASE" ] || [ ! -f "$OUT/initrd.img" ]; then
        die "no base image yet: run a full build first"
    fi
else
    build_base
    build_initrd
fi
build_agent
build_rootfs
install_kernel
write_manifest
log "done in $(($(date +%s) - start)) s: $OUT"
ls -l "$OUT" >&2
echo "$OUT"
