#!/bin/sh
# Installs, idempotently, what the desktop app (src-tauri/, ui/) needs to build and what its
# GUI tests (tests/gui, tier 5) need to run:
#   - Debian packages: WebKitGTK 4.1, GTK 3, appindicator, librsvg and libxdo headers (Tauri 2),
#     Xvfb (a private X display), webkit2gtk-driver (WebKitWebDriver) and dbus-daemon
#     (dbus-run-session: a session bus for the app under test);
#   - tauri-driver (from Cargo's registry), pinned, into $BERTH_TOOLS/bin (default ~/.cache/berth/tools);
#   - the web UI's npm modules (xterm.js and its fit addon for the terminal), pinned by
#     ui/package-lock.json, installed by `npm ci` outside the tree ($BERTH_UI_NPM, default
#     ~/.cache/berth/ui-npm); the files the UI loads are copied to ui/vendor/ (ignored by git;
#     no bundler: they are plain ES modules). Debian's npm is installed when there is no npm;
#   - the Tauri CLI that bundles the app (scripts/package.sh), pinned by packaging/package-lock.json,
#     by `npm ci` into $BERTH_TAURI_NPM (default ~/.cache/berth/tauri-cli): the npm package ships
#     the prebuilt CLI, which installs in seconds where `cargo install tauri-cli` compiles for minutes.
# Runs `apt-get update` only when a package is missing. Usage: scripts/install-gui-deps.sh [--print]
set -eu

TOOLS="${BERTH_TOOLS:-$HOME/.cache/berth/tools}"
TAURI_DRIVER_VERSION="${TAURI_DRIVER_VERSION:-2.1.0}"

PACKAGES="
pkg-config
build-essential
libwebkit2gtk-4.1-dev
libayatana-appindicator3-dev
librsvg2-dev
libgtk-3-dev
libxdo-dev
xvfb
webkit2gtk-driver
dbus-daemon
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

have_driver() {
    cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^tauri-driver v$TAURI_DRIVER_VERSION:"
}

if [ "${1:-}" = "--print" ]; then
    echo "packages:" $PACKAGES
    echo "missing:${missing:- none}"
    if command -v npm >/dev/null; then echo "npm: $(npm --version)"; else echo "npm: missing"; fi
    if [ -f "$(dirname "$0")/../ui/vendor/xterm.js" ]; then echo "ui/vendor: filled"; else echo "ui/vendor: empty"; fi
    if have_driver; then echo "tauri-driver $TAURI_DRIVER_VERSION: installed"; else echo "tauri-driver $TAURI_DRIVER_VERSION: missing"; fi
    exit 0
fi

if ! command -v npm >/dev/null; then
    missing="$missing npm"
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-gui-deps: missing packages:$missing (run as root to install)" >&2
        exit 1
    fi
    echo "install-gui-deps: apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi

if have_driver; then
    echo "install-gui-deps: tauri-driver $TAURI_DRIVER_VERSION already installed"
else
    echo "install-gui-deps: cargo install tauri-driver $TAURI_DRIVER_VERSION"
    # Its own build dir: not the workspace's CARGO_TARGET_DIR.
    env -u CARGO_TARGET_DIR cargo install --locked tauri-driver --version "=$TAURI_DRIVER_VERSION" --root "$TOOLS"
fi
echo "install-gui-deps: tauri-driver in $TOOLS/bin"

# The UI's npm modules: `npm ci` again only when the lock file changed; then the files the UI
# loads are copied into ui/vendor/ (ES modules under a .js name: the app's asset server types
# files by their extension).
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/scripts/npm-ci.sh"
npm_dir="${BERTH_UI_NPM:-$HOME/.cache/berth/ui-npm}"
mkdir -p "$repo/ui/vendor"
npm_ci "$repo/ui" "$npm_dir" @xterm/xterm/lib/xterm.mjs @xterm/addon-fit/lib/addon-fit.mjs
copy() {
    # Only when different: an unchanged file keeps its mtime (no app rebuild).
    cmp -s "$1" "$2" || cp "$1" "$2"
}
copy "$npm_dir/node_modules/@xterm/xterm/lib/xterm.mjs" "$repo/ui/vendor/xterm.js"
copy "$npm_dir/node_modules/@xterm/addon-fit/lib/addon-fit.mjs" "$repo/ui/vendor/addon-fit.js"
copy "$npm_dir/node_modules/@xterm/xterm/css/xterm.css" "$repo/ui/vendor/xterm.css"
echo "install-gui-deps: UI modules in ui/vendor"

npm_ci "$repo/packaging" "${BERTH_TAURI_NPM:-$HOME/.cache/berth/tauri-cli}" .bin/tauri
echo "install-gui-deps: Tauri CLI in ${BERTH_TAURI_NPM:-$HOME/.cache/berth/tauri-cli}/node_modules/.bin"
