#!/usr/bin/env bash
# Puts Debian trixie's cloud-init (the current client, 25.x) beside the
# system's one: downloads its .deb through a private apt state (the system's
# sources, lists and packages are never touched) and unpacks it into
# .cache/cloud-init-current/ of this checkout. The tests run it with
#   PYTHONPATH=.cache/cloud-init-current/usr/lib/python3/dist-packages /usr/bin/python3
# Idempotent: when an unpacked copy is there, nothing is downloaded
# (--update fetches the newest trixie version again).
#
# Usage: tests/cloudinit/fetch_current.sh [--update]
# Needs apt-get, dpkg-deb and /usr/share/keyrings/debian-archive-keyring.gpg
# (package debian-archive-keyring); works as root or as a user.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache"
target="$cache/cloud-init-current"
state="$cache/apt-trixie"
suite="${CLOUD_INIT_CURRENT_SUITE:-trixie}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
dist="$target/usr/lib/python3/dist-packages"

say() { echo "fetch_current: $*" >&2; }

# What the unpacked copy is, as its own code says; empty if it does not run.
unpacked_version() {
  [ -f "$dist/cloudinit/version.py" ] || return 0
  PYTHONPATH="$dist" /usr/bin/python3 -c 'from cloudinit import version; print(version.version_string())' \
    2>/dev/null || true
}

if [ "${1:-}" != "--update" ]; then
  have="$(unpacked_version)"
  if [ -n "$have" ] && [ -f "$target/VERSION" ]; then
    say "cloud-init $have already in $target"
    exit 0
  fi
fi

for tool in apt-get dpkg-deb /usr/bin/python3; do
  command -v "$tool" >/dev/null || { say "$tool is missing"; exit 1; }
done
[ -r "$keyring" ] || { say "$keyring is missing (apt-get install debian-archive-keyring)"; exit 1; }

mkdir -p "$state/etc" "$state/lists/partial" "$state/cache/archives/partial" "$state/download"
echo "deb [signed-by=$keyring] http://deb.debian.org/debian $suite main" >"$state/etc/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$state/etc/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State::Lists=$state/lists"
  -o "Dir::Cache=$state/cache"
  -o "APT::Sandbox::User=$(id -un)"
)
# Lists older than a day are refreshed; a fresh machine gets them now.
if [ -z "$(find "$state/lists" -maxdepth 1 -name '*_InRelease' -mmin -1440 -print -quit)" ]; then
  say "apt-get update ($suite, private state in $state)"
  apt-get "${apt_opts[@]}" -q update >&2
fi

rm -f "$state/download"/*.deb
say "downloading cloud-init from $suite"
(cd "$state/download" && apt-get "${apt_opts[@]}" -q download cloud-init >&2)
deb="$(ls "$state/download"/cloud-init_*_all.deb)"

# Unpack beside the old copy, then swap, so a failed run leaves no half tree.
rm -rf "$target.new"
dpkg-deb -x "$deb" "$target.new"
dpkg-deb -f "$deb" Version >"$target.new/VERSION"
# Byte-compile once, as the package's postinst would: every test run imports it afresh.
/usr/bin/python3 -m compileall -q "$target.new/usr/lib/python3/dist-packages" >/dev/null
rm -rf "$target"
mv "$target.new" "$target"

have="$(unpacked_version)"
if [ -z "$have" ]; then
  say "the unpacked cloud-init does not import with /usr/bin/python3"
  exit 1
fi
say "cloud-init $have ($(cat "$target/VERSION")) in $target"
