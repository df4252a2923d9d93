#!/bin/sh
# Installs posagent from its package tarball (`npm pack`) the way a terminal image carries it:
#
#   /opt/posagent/releases/<version>/      the release (self-contained: bundles + native addons), root's
#   /opt/posagent/current -> releases/<version>   what systemd starts; the privileged installer switches it
#   /usr/lib/posagent/posagent-installer.js   the installer and boot guard (root, outside every release)
#   /etc/systemd/system/posagent.service   the unit (its ExecStartPre=+ runs the boot guard)
#   /etc/systemd/system/posagent-update@.service   the privileged installer's steps (stage, activate)
#   /usr/lib/sysusers.d/posagent.conf      the posagent user and group
#   /usr/lib/tmpfiles.d/posagent.conf      /opt/posagent, /etc/posagent
#   /etc/polkit-1/rules.d/50-posagent.rules   reboot and the installer's two units for user posagent, nothing else
#   /etc/posagent/                         agent.json (device settings), release-key.pem, fleet-ca.crt
#
# Usage:
#   install.sh [--root DIR] [--node PATH] [--release-key PEM] [--settings JSON] TARBALL
#   install.sh [--root DIR] --uninstall [--purge]
#
# --root DIR builds into an image tree (nothing is started). Idempotent: installing the same
# tarball again changes nothing; a newer one is added beside the old one and becomes current.
# --uninstall keeps /var/lib/posagent (the identity and any unsent transactions) unless --purge.
set -eu

ROOT=/
NODE=
RELEASE_KEY=
SETTINGS=
UNINSTALL=0
PURGE=0
TARBALL=

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --node) NODE=${2:?--node needs a path}; shift 2 ;;
    --release-key) RELEASE_KEY=${2:?--release-key needs a file}; shift 2 ;;
    --settings) SETTINGS=${2:?--settings needs a file}; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    *) [ -z "$TARBALL" ] || die "one tarball only"; TARBALL=$1; shift ;;
  esac
done

ROOT=${ROOT%/}
HERE=$(cd "$(dirname "$0")" && pwd)
OPT="$ROOT/opt/posagent"
UNIT="$ROOT/etc/systemd/system/posagent.service"
UPDATE_UNIT="$ROOT/etc/systemd/system/posagent-update@.service"
LIB="$ROOT/usr/lib/posagent"
SYSUSERS="$ROOT/usr/lib/sysusers.d/posagent.conf"
TMPFILES="$ROOT/usr/lib/tmpfiles.d/posagent.conf"
POLKIT="$ROOT/etc/polkit-1/rules.d/50-posagent.rules"
ETC="$ROOT/etc/posagent"
LIVE=0; [ -z "$ROOT" ] && LIVE=1   # installing on the running system, not into an image tree

if [ "$UNINSTALL" = 1 ]; then
  [ "$LIVE" = 1 ] && systemctl disable --now posagent.service 2>/dev/null || true
  [ "$LIVE" = 0 ] && command -v systemctl >/dev/null && systemctl --root="$ROOT" disable posagent.service 2>/dev/null || true
  rm -f "$UNIT" "$UPDATE_UNIT" "$SYSUSERS" "$TMPFILES" "$POLKIT"
  rm -rf "$OPT" "$LIB"
  if [ "$PURGE" = 1 ]; then rm -rf "$ROOT/var/lib/posagent" "$ETC"; echo "posagent removed, state purged"
  else echo "posagent removed; kept $ROOT/var/lib/posagent (identity, unsent transactions) and $ETC — --purge removes them"; fi
  [ "$LIVE" = 1 ] && systemctl daemon-reload || true
  exit 0
fi

[ -n "$TARBALL" ] || usage 2
[ -f "$TARBALL" ] || die "no such tarball: $TARBALL"
VERSION=$(tar -xzOf "$TARBALL" package/package.json | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$VERSION" ] || die "$TARBALL has no package/package.json with a version: not an npm pack tarball"
if [ -z "$NODE" ]; then NODE=$(command -v node || true); fi
[ -n "$NODE" ] || die "node not found; pass --node PATH (Node.js 20 or newer)"

# The release, unpacked beside any other (never over the running one).
REL="$OPT/releases/$VERSION"
if [ -f "$REL/package.json" ]; then
  echo "release $VERSION already installed"
else
  STAGE="$OPT/releases/.$VERSION.installing"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  tar -xzf "$TARBALL" -C "$STAGE" --strip-components=1 --no-same-owner
  chmod -R go-w "$STAGE"
  mv "$STAGE" "$REL"
  echo "installed release $VERSION in $REL"
fi
chmod 0755 "$OPT" "$OPT/releases"
ln -sfn "releases/$VERSION" "$OPT/current.next"
mv -T "$OPT/current.next" "$OPT/current"
# The installer and boot guard live outside every release: a release can never replace them.
install -d -m 0755 "$LIB"
install -m 0755 "$REL/dist/bin/posagent-installer.js" "$LIB/posagent-installer.js"

# systemd, sysusers, tmpfiles, polkit.
install -d "$(dirname "$UNIT")" "$(dirname "$SYSUSERS")" "$(dirname "$TMPFILES")" "$(dirname "$POLKIT")" "$ETC"
for pair in "posagent.service:$UNIT" "posagent-update@.service:$UPDATE_UNIT"; do
  src=${pair%%:*}; dst=${pair#*:}
  sed -E "s#^(ExecStart|ExecStartPre|ExecStopPost)=([+]?)/usr/bin/node #\1=\2$NODE #" "$HERE/$src" > "$dst.tmp" && mv "$dst.tmp" "$dst"
  chmod 0644 "$dst"
done
install -m 0644 "$HERE/posagent.sysusers" "$SYSUSERS"
install -m 0644 "$HERE/posagent.tmpfiles" "$TMPFILES"
install -m 0644 "$HERE/posagent.rules" "$POLKIT"
[ -n "$RELEASE_KEY" ] && install -m 0644 "$RELEASE_KEY" "$ETC/release-key.pem"
if [ -n "$SETTINGS" ]; then install -m 0644 "$SETTINGS" "$ETC/agent.json"
elif [ ! -f "$ETC/agent.json" ]; then echo '{}' > "$ETC/agent.json"; chmod 0644 "$ETC/agent.json"; fi

# The user, the directories, the unit enabled — into the image tree, or on this system.
if command -v systemd-sysusers >/dev/null; then
  if [ "$LIVE" = 1 ]; then systemd-sysusers posagent.conf >/dev/null 2>&1 || systemd-sysusers
  else systemd-sysusers --root="$ROOT" "$SYSUSERS"; fi
fi
if command -v systemd-tmpfiles >/dev/null; then
  if [ "$LIVE" = 1 ]; then systemd-tmpfiles --create posagent.conf
  else systemd-tmpfiles --root="$ROOT" --create "$TMPFILES" 2>/dev/null || true; fi
fi
if command -v systemctl >/dev/null; then
  if [ "$LIVE" = 1 ]; then systemctl daemon-reload && systemctl enable posagent.service
  else systemctl --root="$ROOT" enable posagent.service >/dev/null 2>&1 || true; fi
fi
# Root owns the release tree and the installer (the service can only read them); the agent owns its
# state dir (systemd's StateDirectory=).
chown -R 0:0 "$OPT" "$LIB" 2>/dev/null || true

echo "posagent $VERSION installed; current -> releases/$VERSION"
[ "$LIVE" = 1 ] && echo "start it: systemctl start posagent; logs: journalctl -u posagent -f" || true
