#!/bin/sh
# Installs the docker CLI plugins that current Docker installs ship and Debian 12 does not:
# compose v2 (`docker-compose` 2.26, a Go CLI plugin) and buildx (`docker-buildx` 0.13), taken
# from Debian trixie's packages. Idempotent.
#
# The system's apt state is never touched: a private sources list (the system's own Debian
# mirror, suite trixie), private lists and cache under $BERTH_PLUGINS/apt, packages only
# downloaded and extracted (docs/dev/testing.md, "Docker CLI plugins").
#
# The plugins land in separate folders, not in ~/.docker/cli-plugins: with buildx installed the
# docker CLI sends every `docker build` through BuildKit, so a test opts in per plugin with
# DOCKER_CONFIG pointing at a config whose `cliPluginsExtraDirs` lists the folder it wants:
#   $BERTH_PLUGINS/compose/docker-compose
#   $BERTH_PLUGINS/buildx/docker-buildx
set -eu

PLUGINS="${BERTH_PLUGINS:-/root/.cache/berth/docker-plugins}"
APT="$PLUGINS/apt"

installed() { [ -x "$PLUGINS/compose/docker-compose" ] && [ -x "$PLUGINS/buildx/docker-buildx" ]; }
if installed; then
    echo "install-docker-plugins: compose and buildx already in $PLUGINS"
    exit 0
fi

# The mirror the system already uses (deb822 or one-line format), so no host name is written here.
mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
[ -n "$mirror" ] || mirror="$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*\/debian\)\/*[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)"
[ -n "$mirror" ] || { echo "install-docker-plugins: no Debian mirror found in the system's apt sources" >&2; exit 1; }

mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
echo "deb $mirror trixie main" > "$APT/trixie.list"
set -- -o APT::Sandbox::User=root -o "Dir::Etc::sourcelist=$APT/trixie.list" -o Dir::Etc::sourceparts=/dev/null \
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
echo "install-docker-plugins: apt-get update (private lists for trixie)"
apt-get "$@" -q update >/dev/null
cd "$APT/debs"
apt-get "$@" -q download docker-compose docker-buildx

extract() { # package plugin-folder
    rm -rf "$APT/x/$1"
    mkdir -p "$APT/x/$1" "$PLUGINS/$2"
    dpkg-deb -x "$APT/debs/$1"_*.deb "$APT/x/$1"
    install -m 0755 "$APT/x/$1/usr/libexec/docker/cli-plugins/$1" "$PLUGINS/$2/$1"
}
extract docker-compose compose
extract docker-buildx buildx
"$PLUGINS/compose/docker-compose" version
"$PLUGINS/buildx/docker-buildx" version
echo "install-docker-plugins: plugins in $PLUGINS"
