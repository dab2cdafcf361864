#!/usr/bin/env bash
# Build the Apache-licensed TimescaleDB for Debian's PostgreSQL 15 and install it.
#
# Why a source build: bookworm has no TimescaleDB package and trixie's binary
# packages need a newer libc, so Debian's own trixie *source* package is fetched
# through a private apt configuration (nothing is added to the system's sources)
# and compiled against bookworm's PostgreSQL headers.
#
# Idempotent: exits at once when the extension is already installed for PG 15.
# Usage: scripts/install-timescaledb.sh [--force]
set -euo pipefail

PG_MAJOR=15
SOURCE_SUITE=trixie
SOURCE_PACKAGE=timescaledb
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_LIB=/usr/lib/postgresql/$PG_MAJOR/lib
PG_SHARE=/usr/share/postgresql/$PG_MAJOR
BUILD_PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" cmake build-essential dpkg-dev xz-utils
)

say() { printf 'install-timescaledb: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) die "unknown argument '$1' (usage: $0 [--force])" ;;
esac

installed() {
  [[ -f $PG_LIB/timescaledb.so && -f $PG_SHARE/extension/timescaledb.control ]]
}

if [[ $force == 0 ]] && installed; then
  say "already installed ($PG_LIB/timescaledb.so)"
  exit 0
fi

if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || die "must run as root (or with sudo available)"
  exec sudo -- "$0" "$@"
fi

export DEBIAN_FRONTEND=noninteractive

installed_version() {
  dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null | awk '$1 == "installed" { print $2 }'
}

# Server and headers must be the same minor version, or the module fails to load
# with "undefined symbol"; installing both in one apt-get call keeps them equal.
needs_packages() {
  local pkg
  for pkg in "${BUILD_PACKAGES[@]}"; do
    [[ -n $(installed_version "$pkg") ]] || return 0
  done
  [[ $(installed_version "postgresql-$PG_MAJOR") != $(installed_version "postgresql-server-dev-$PG_MAJOR") ]]
}

apt_install() {
  apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

if needs_packages; then
  say "installing ${BUILD_PACKAGES[*]}"
  if ! apt_install "${BUILD_PACKAGES[@]}"; then
    say "retrying after apt-get update"
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt_install "${BUILD_PACKAGES[@]}" || die "apt-get install ${BUILD_PACKAGES[*]} failed"
  fi
fi
[[ -x $PG_BIN/postgres ]] || die "$PG_BIN/postgres missing after installing postgresql-$PG_MAJOR"

work=$(mktemp -d /tmp/timescaledb-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

# --- private apt configuration: deb-src for trixie on the archive this machine already uses ---
codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
[[ -n $codename ]] || die "cannot read VERSION_CODENAME from /etc/os-release"

# Print "URI<TAB>SIGNED-BY" for each archive URI serving the release's main suite.
archive_uris() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f $file ]] || continue
    awk -v suite="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; signed = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/ || index(line, ":") == 0) continue
          key = tolower(substr(line, 1, index(line, ":") - 1))
          value = substr(line, index(line, ":") + 1)
          gsub(/^[ \t]+|[ \t]+$/, "", value)
          if (key == "types") types = value
          else if (key == "uris") uris = value
          else if (key == "suites") suites = value
          else if (key == "signed-by") signed = value
          else if (key == "enabled") enabled = tolower(value)
        }
        if (enabled == "no") next
        if ((" " types " ") !~ / deb /) next
        if ((" " suites " ") !~ (" " suite " ")) next
        n = split(uris, list, /[ \t]+/)
        for (j = 1; j <= n; j++) print list[j] "\t" signed
      }' "$file"
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $file ]] || continue
    # one-line format: deb [options] URI suite components...
    awk -v suite="$codename" '
      $1 == "deb" {
        signed = ""; i = 2
        if ($2 ~ /^\[/) {
          while (i <= NF) {
            if ($i ~ /signed-by=/) { signed = $i; sub(/.*signed-by=/, "", signed); sub(/\]$/, "", signed) }
            if ($i ~ /\]$/) { i++; break }
            i++
          }
        }
        if ($(i + 1) == suite) print $i "\t" signed
      }' "$file"
  done
}

apt_dir=$work/apt
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/preferences.d"
: >"$apt_dir/sources.list"
while IFS=$'\t' read -r uri signed; do
  [[ -n $uri ]] || continue
  if [[ -n $signed && -f $signed ]]; then
    printf 'deb-src [signed-by=%s] %s %s main\n' "$signed" "$uri" "$SOURCE_SUITE" >>"$apt_dir/sources.list"
  else
    printf 'deb-src %s %s main\n' "$uri" "$SOURCE_SUITE" >>"$apt_dir/sources.list"
  fi
done < <(archive_uris | sort -u)
[[ -s $apt_dir/sources.list ]] || die "no archive URI for suite '$codename' found in /etc/apt/sources.list*"
say "source package from: $(cut -d' ' -f3- "$apt_dir/sources.list" | paste -sd';')"

private_apt=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::Etc::Preferences=$apt_dir/preferences"
  -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Acquire::Languages=none"
  -o "APT::Get::List-Cleanup=false"
)
chown -R _apt:root "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" 2>/dev/null || true

apt-get "${private_apt[@]}" update -q >/dev/null || die "apt-get update (private $SOURCE_SUITE deb-src) failed"

mkdir -p "$work/download"
chown _apt:root "$work/download" 2>/dev/null || true
(cd "$work/download" && apt-get "${private_apt[@]}" source --download-only -q "$SOURCE_PACKAGE" >/dev/null) \
  || die "apt-get source --download-only $SOURCE_PACKAGE failed"
dsc=$(find "$work/download" -maxdepth 1 -name "${SOURCE_PACKAGE}_*.dsc" | head -n1)
[[ -n $dsc ]] || die "no .dsc downloaded for $SOURCE_PACKAGE"
say "building $(basename "$dsc" .dsc)"

# apt checked the files against the signed Sources index; dpkg-source checks them against the .dsc.
dpkg-source -q -x "$dsc" "$work/src" >/dev/null 2>&1 || die "dpkg-source -x $dsc failed"

# --- build and install ---
cmake -S "$work/src" -B "$work/build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DPG_CONFIG="$PG_BIN/pg_config" \
  -DAPACHE_ONLY=1 -DUSE_TELEMETRY=OFF -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
  -DUSE_OPENSSL=OFF -DWARNINGS_AS_ERRORS=OFF >"$work/cmake.log" 2>&1 \
  || { tail -n 40 "$work/cmake.log" >&2; die "cmake configure failed"; }
nice -n 10 make -C "$work/build" -j2 install >"$work/make.log" 2>&1 \
  || { tail -n 40 "$work/make.log" >&2; die "make install failed"; }

installed || die "build finished but $PG_LIB/timescaledb.so is missing"
say "installed: $(ls "$PG_LIB"/timescaledb-*.so | xargs -n1 basename | paste -sd' ')"
