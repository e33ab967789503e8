#!/usr/bin/env bash
# Builds Berth's Linux guest from Debian 12 packages: kernel, initramfs, read-only root image,
# kernel command line and a manifest. See docs/vm-image.md for the artifacts and how to boot them.
#
#   vm-image/build.sh                 build what is missing or out of date (idempotent)
#   vm-image/build.sh --agent         fast path: only re-pack a rebuilt berth-agent
#   vm-image/build.sh --update-lock   re-resolve package versions (rewrites vm-image/packages.lock)
#
# Environment: BERTH_VM_CACHE (default /root/.cache/berth/vm-image), BERTH_AGENT_BIN (use this
# agent binary instead of `cargo build --release -p berth-agent`), SOURCE_DATE_EPOCH (mtimes),
# CARGO_TARGET_DIR (passed to cargo).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=${BERTH_VM_CACHE:-/root/.cache/berth/vm-image}
OUT=$CACHE/out
WORK=$CACHE/work
DEBS=$CACHE/debs
LOCK=$HERE/packages.lock
EPOCH=${SOURCE_DATE_EPOCH:-1735689600}
# Fixed identity of the root filesystem, so the image is byte-for-byte reproducible.
ROOT_UUID=4a8f2c1e-0b7d-4e55-9c3a-6d2b1f0e9a71
ARCH=amd64
MULTIARCH=x86_64-linux-gnu

mode=full
update_lock=0
for a in "$@"; do
    case $a in
    --agent) mode=agent ;;
    --update-lock) update_lock=1 ;;
    -h | --help)
        sed -n '2,12p' "$0"
        exit 0
        ;;
    *)
        echo "build.sh: unknown argument $a" >&2
        exit 2
        ;;
    esac
done

log() { printf 'vm-image: %s\n' "$*" >&2; }
die() {
    printf 'vm-image: error: %s\n' "$*" >&2
    exit 1
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
    for pair in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils depmod:kmod cpio:cpio \
        lz4:lz4 mke2fs:e2fsprogs jq:jq strip:binutils readelf:binutils; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}" >&2
    fi
}

# --- 1. packages -----------------------------------------------------------------------------
# packages.lock: "name version" per line, the rootfs closure plus the kernel package.
resolve_lock() {
    local empty kpkg kver pkgs
    empty=$(mktemp)
    mapfile -t pkgs < <(list "$HERE/packages.txt")
    log "resolving package versions"
    apt-get -s -q -o Dir::State::status="$empty" -o Debug::NoLocking=1 \
        --no-install-recommends install "${pkgs[@]}" |
        awk '/^Inst /{v=$3; sub(/^\(/, "", v); print $2, v}' | LC_ALL=C sort >"$LOCK.tmp"
    rm -f "$empty"
    kpkg=$(apt-cache depends "linux-image-cloud-$ARCH" | awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$kpkg" ] || die "no linux-image-cloud-$ARCH in the apt lists (apt-get update?)"
    kver=$(apt-cache show --no-all-versions "$kpkg" | awk '/^Version:/{print $2; exit}')
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
    if ! (cd "$DEBS" && apt-get download -q "${want[@]}" >&2 2>/dev/null); then
        apt-get update -q >&2
        (cd "$DEBS" && apt-get download -q "${want[@]}" >&2) ||
            die "cannot download the locked versions; run build.sh --update-lock"
    fi
}

# --- 2. kernel -------------------------------------------------------------------------------
kernel_pkg() { awk '$1 ~ /^linux-image-/{print $1, $2}' "$LOCK"; }

# Extracts the kernel package and the PVH ELF vmlinux (decompressed payload of the bzImage).
build_kernel() {
    local name ver deb dir vmlinuz off
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
    vmlinuz=$dir/boot/vmlinuz-$KVER
    # The cloud kernel's payload is LZ4 (legacy frame, magic 02 21 4c 18); try each match.
    # shellcheck disable=SC2013 # byte offsets, one number per line
    for off in $(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | cut -d: -f1); do
        tail -c +$((off + 1)) "$vmlinuz" | lz4 -dc 2>/dev/null >"$dir/vmlinux" || true
        if [ "$(head -c 4 "$dir/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
            break
        fi
        rm -f "$dir/vmlinux"
    done
    [ -f "$dir/vmlinux" ] || die "no LZ4 ELF payload found in $vmlinuz"
    touch "$dir/.done"
}

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
    for path in $("$root/usr/bin/busybox" --list-full); do
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
    depmod -b "$root" "$KVER"
    mkdir -p "$root/etc/berth"
    list "$HERE/modules.txt" >"$root/etc/berth/modules"

    ldconfig -r "$root"
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
build_agent() {
    local bin lib
    if [ -n "${BERTH_AGENT_BIN:-}" ]; then
        bin=$BERTH_AGENT_BIN
    else
        command -v cargo >/dev/null || die "cargo not found (install Rust) or set BERTH_AGENT_BIN"
        log "cargo build --release -p berth-agent"
        (cd "$REPO" && cargo build --release -p berth-agent >&2)
        bin=${CARGO_TARGET_DIR:-$REPO/target}/release/berth-agent
    fi
    [ -x "$bin" ] || die "no agent binary at $bin"
    AGENT_SRC_SHA=$(sha256sum <"$bin" | cut -d' ' -f1)
    strip -o "$WORK/berth-agent" "$bin"
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
install_kernel() {
    cmp -s "$KDIR/vmlinux" "$OUT/vmlinux" || cp "$KDIR/vmlinux" "$OUT/vmlinux"
    cmp -s "$KDIR/boot/vmlinuz-$KVER" "$OUT/bzImage" || cp "$KDIR/boot/vmlinuz-$KVER" "$OUT/bzImage"
    list "$HERE/cmdline" | tr '\n' ' ' | sed 's/ $/\n/' >"$OUT/cmdline"
}

write_manifest() {
    local f files=()
    for f in vmlinux bzImage initrd.img rootfs.img cmdline; do files+=("$f"); done
    {
        for f in "${files[@]}"; do
            printf '%s %s %s\n' "$f" "$(sha256sum <"$OUT/$f" | cut -d' ' -f1)" "$(stat -c %s "$OUT/$f")"
        done
    } | jq -R -s --arg kver "$KVER" --arg epoch "$EPOCH" --arg agent_sha "$AGENT_SRC_SHA" \
        --arg agent_img_sha "$(sha256sum <"$WORK/berth-agent" | cut -d' ' -f1)" \
        --arg cmdline "$(cat "$OUT/cmdline")" --rawfile lock "$LOCK" \
        --rawfile exclude "$HERE/packages.exclude" '
        {
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
    if [ "$update_lock" = 1 ] || [ ! -s "$LOCK" ]; then resolve_lock; fi
    download_debs
fi
[ -s "$LOCK" ] || die "no $LOCK: run a full build first"
build_kernel
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
