# Sourced (POSIX sh) by the scripts that install pinned npm packages outside the tree
# (scripts/install-gui-deps.sh, tests/fixtures/devcontainers-cli.sh).
#
# npm_ci SRC DIR FILE...: `npm ci` of SRC's package.json and package-lock.json in DIR, unless DIR
# already has that lock file and every FILE (relative to DIR/node_modules).
npm_ci() {
    src=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    fresh=1
    cmp -s "$src/package-lock.json" "$dir/package-lock.json" || fresh=0
    for f in "$@"; do [ -f "$dir/node_modules/$f" ] || fresh=0; done
    if [ "$fresh" = 0 ]; then
        echo "npm ci ($src/package-lock.json) in $dir"
        cp "$src/package.json" "$src/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    fi
}
