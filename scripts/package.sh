#!/usr/bin/env bash
# Bundles the desktop app with the Tauri CLI (packaging/package-lock.json pins it; installed by
# scripts/install-gui-deps.sh into ~/.cache/berth/tauri-cli): berth-app with the `berth` CLI
# beside it (Tauri's externalBin, staged here as berth-<target triple>: the app runs the
# `berth` next to itself), and in the .deb the guest image and the VM's helper tools under
# /usr/lib/berth (found there by berth-host's defaults). See docs/design/host.md "Packaging".
#
#   scripts/package.sh [--release] [--no-build] [--bundles deb,rpm] [--vm-image DIR | --no-vm-image]
#                      [--tools DIR | --no-tools]
#
# Default: the debug build (what CI builds; `--release` builds optimised with the UI embedded),
# bundles `deb` on Linux, `app,dmg` on macOS, `nsis` on Windows. `--no-build` bundles the
# binaries already in the target dir. The guest image defaults to vm-image/build.sh's output and
# the tools to scripts/install-vm-tools.sh's, each left out (with a note) when absent.
# Prints the paths of the bundles, last.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/berth/target}"
export CARGO_TERM_COLOR=never

profile=debug
build=1
bundles=""
vm_image="${BERTH_VM_CACHE:-$HOME/.cache/berth/vm-image}/out"
tools="${BERTH_TOOLS:-$HOME/.cache/berth/tools}"
while [ $# -gt 0 ]; do
    case $1 in
        --release) profile=release ;;
        --no-build) build=0 ;;
        --bundles) bundles=$2; shift ;;
        --vm-image) vm_image=$2; shift ;;
        --no-vm-image) vm_image="" ;;
        --tools) tools=$2; shift ;;
        --no-tools) tools="" ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

triple=$(rustc -vV | sed -n 's/^host: //p')
exe=""
case $triple in
    *-windows-*) exe=.exe; default_bundles=nsis ;;
    *-apple-darwin) default_bundles=app,dmg ;;
    *) default_bundles=deb ;;
esac
bundles=${bundles:-$default_bundles}
tauri="${BERTH_TAURI_CLI:-$HOME/.cache/berth/tauri-cli/node_modules/.bin/tauri}"
[ -x "$tauri" ] || { echo "package.sh: no Tauri CLI at $tauri (run scripts/install-gui-deps.sh)" >&2; exit 1; }

if [ "$build" = 1 ]; then
    if [ "$profile" = release ]; then
        cargo build --locked --release -p berth-cli -p berth-app --features berth-app/custom-protocol
    else
        cargo build --locked -p berth-cli -p berth-app
    fi
fi
bin_dir="$CARGO_TARGET_DIR/$profile"
for b in berth berth-app; do
    [ -x "$bin_dir/$b$exe" ] || { echo "package.sh: $bin_dir/$b$exe is not built" >&2; exit 1; }
done

# The CLI as Tauri's externalBin wants it (name-<triple>), and the configuration this run adds
# to src-tauri/tauri.conf.json: externalBin must not be in that file, since tauri-build checks
# it at every `cargo build` of the app.
stage=$(mktemp -d "${TMPDIR:-/tmp}/berth-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$bin_dir/berth$exe" "$stage/berth-$triple$exe"
python3 - "$stage" "$triple" "$vm_image" "$tools" >"$stage/bundle.json" <<'EOF'
import json, os, sys

stage, triple, vm_image, tools = sys.argv[1:5]
files = {}
def add(folder, names, dest):
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        print(f"package.sh: {folder} lacks {', '.join(missing)}: the .deb goes without {dest}", file=sys.stderr)
        return
    for n in names:
        files[f"/usr/lib/berth/{dest}/{n}"] = os.path.abspath(os.path.join(folder, n))
if vm_image:
    add(vm_image, ["cmdline", "vmlinux", "initrd.img", "rootfs.img", "manifest.json"], "vm-image")
if tools:
    add(tools, ["bin/vhost-device-vsock", "bin/virtiofsd"], "tools")
qemu = {"x86_64": "qemu-system-x86", "aarch64": "qemu-system-arm"}.get(triple.split("-")[0])
deb = {"files": files, "recommends": [q for q in [qemu, "qemu-utils"] if q]}
print(json.dumps({"bundle": {"externalBin": [os.path.join(stage, "berth")], "linux": {"deb": deb}}}))
EOF

# --no-binary-patching: the binaries stay as built (other tests run them; a signed one stays
# signed); the patch only tells Tauri's updater which bundle type it runs from, unused here.
flags=(--ci --no-binary-patching --bundles "$bundles" --config "$stage/bundle.json")
[ "$profile" = debug ] && flags+=(--debug)
[ "$profile" = release ] && flags+=(--features custom-protocol)
echo "package.sh: tauri bundle ${flags[*]}"
(cd "$repo/src-tauri" && "$tauri" bundle "${flags[@]}")
find "$bin_dir/bundle" -maxdepth 2 -newer "$stage/bundle.json" \( -name '*.deb' -o -name '*.rpm' \
    -o -name '*.AppImage' -o -name '*.dmg' -o -name '*.app' -o -name '*-setup.exe' -o -name '*.msi' \) | sort
