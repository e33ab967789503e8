#!/usr/bin/env bash
# Keeps the macOS and Windows builds honest from a Linux machine (root, Debian 12):
# - clippy -D warnings of berth-host, berth-cli and berth-app for aarch64- and x86_64-apple-darwin
#   (Debian's clang compiles the one C helper, objc2-exception-helper; linking needs a macOS SDK,
#   so check/clippy is the limit here);
# - builds berth.exe and berth-app.exe for x86_64-pc-windows-gnu (mingw-w64);
# - runs the host-side crates' tests under wine (named-pipe forwarding included) and
#   `berth.exe --version` / `berth.exe status` against a temp state dir.
# Uses the same CARGO_TARGET_DIR as scripts/test.sh, so a warm run only re-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"
export CARGO_TERM_COLOR=never
step() { printf '\n==> xplat: %s (%ss)\n' "$*" "$SECONDS"; }

step "toolchains and packages"
need=()
for t in aarch64-apple-darwin x86_64-apple-darwin x86_64-pc-windows-gnu; do
    rustup target list --installed | grep -qx "$t" || need+=("$t")
done
if [ ${#need[@]} -gt 0 ]; then rustup target add "${need[@]}"; fi
pkgs=()
command -v clang >/dev/null || pkgs+=(clang)
command -v x86_64-w64-mingw32-gcc >/dev/null || pkgs+=(mingw-w64)
[ -x /usr/lib/wine/wine64 ] || pkgs+=(wine64)
if [ ${#pkgs[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

step "clippy for macOS"
for t in aarch64-apple-darwin x86_64-apple-darwin; do
    v="CC_${t//-/_}"
    export "$v=clang"
    cargo clippy --locked -p berth-host -p berth-cli -p berth-app --target "$t" -- -D warnings
done

step "build for Windows"
win=x86_64-pc-windows-gnu
cargo build --locked -p berth-cli -p berth-app --target "$win"
cargo test --locked --no-run -p berth-host -p berth-vsock -p berth-cli -p berth-agent-proto \
    -p berth-docker-api --target "$win"

step "wine prefix with a bcryptprimitives.dll stub"
# Debian's wine64 package alone has no `wine` wrapper in PATH.
wine=/usr/lib/wine/wine64
export WINEPREFIX="${WINEPREFIX:-$HOME/.cache/berth/wine}"
export WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/system.reg" ]; then "$wine" wineboot -i >/dev/null 2>&1; fi
stub="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$stub" ] || [ scripts/xplat/bcryptprimitives.c -nt "$stub" ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -o "$stub" scripts/xplat/bcryptprimitives.c -ladvapi32
fi

step "host tests under wine"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine"
cargo test --locked -p berth-host -p berth-vsock -p berth-cli -p berth-agent-proto \
    -p berth-docker-api --target "$win"

step "berth.exe"
exe="$CARGO_TARGET_DIR/$win/debug/berth.exe"
# Not `tee /dev/stderr`: that reopens (and truncates) a log file stderr is redirected to.
version=$("$wine" "$exe" --version)
echo "$version"
grep -q '^berth ' <<<"$version"
home=$(mktemp -d /tmp/berth-xplat.XXXXXX)
trap 'rm -rf "$home"' EXIT
set +e
out=$("$wine" "$exe" --home "Z:$home" status 2>&1)
rc=$?
set -e
echo "$out"
# Nothing runs: status says so and exits 3 (API down), naming the state dir's pipe.
[ "$rc" = 3 ] && grep -q 'supervisor: not running' <<<"$out" && grep -q 'npipe:////./pipe/berth_docker_' <<<"$out"
step "xplat done"
