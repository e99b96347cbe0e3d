#!/usr/bin/env bash
# fedstack host provisioning: Docker engine, Python with venv, the FeatureCloud CLI at a pinned
# version in a venv, and fedstack's working directory.
#
# Run as `bash -s` over SSH with settings + this script on stdin (fedinfra.script.render_stdin),
# so no setting or secret ever appears in a process list. Every step checks before it acts:
# a second run on a provisioned host changes nothing, takes seconds, and says so in its last
# line:  "fedstack-provision: changed: <what>"  or  "fedstack-provision: changed: nothing".
#
# Settings (environment, all optional except FEDSTACK_WORKDIR):
#   FEDSTACK_WORKDIR          fedstack's working directory (absolute), owned by the login user
#   FEDSTACK_FC_VERSION       FeatureCloud CLI version from PyPI (package `featurecloud`)
#   FEDSTACK_DOCKER_REQUIRED  1 (default): exit 3 if the Docker engine cannot run here;
#                             0: say so on stderr and carry on (a chroot or container)
#   PIP_INDEX_URL             a private package index (may hold a token: stdin only)
#   PIP_CERT                  CA bundle for pip (default: the system's, if present)
#   FEDSTACK_FCAPI_PACKAGE    for a host-held site (its password stays here): what pip installs
#                             into WORKDIR/fcapi (fedstack, which carries fcapi: a name from
#                             PIP_INDEX_URL or PyPI, or a wheel's path or URL); empty: nothing
#   FEDSTACK_PASSWORD_FILE    that site's FeatureCloud password file (absolute), mode 0600
#   FEDSTACK_FC_PASSWORD      its password, only from the site's own stack (stdin only);
#                             empty: the site's admin puts the file there
#
# Exit codes: 0 done, 2 bad settings, 3 Docker engine cannot run, 4 package download failed.
set -euo pipefail

readonly TAG="fedstack-provision"
WORKDIR="${FEDSTACK_WORKDIR:-}"
FC_VERSION="${FEDSTACK_FC_VERSION:-0.1.0}"
DOCKER_REQUIRED="${FEDSTACK_DOCKER_REQUIRED:-1}"
APT_LOCK_TIMEOUT="${FEDSTACK_APT_LOCK_TIMEOUT:-600}"
PACKAGES=(ca-certificates docker.io python3 python3-venv)
FCAPI_PACKAGE="${FEDSTACK_FCAPI_PACKAGE:-}"
PASSWORD_FILE="${FEDSTACK_PASSWORD_FILE:-}"
FC_PASSWORD="${FEDSTACK_FC_PASSWORD:-}"

CHANGED=()

say() { printf '%s: %s\n' "$TAG" "$*" >&2; }
die() {
  local code="$1"
  shift
  say "ERROR: $*"
  exit "$code"
}
changed() { CHANGED+=("$1"); }

case "$WORKDIR" in
  /?*) ;;
  *) die 2 "FEDSTACK_WORKDIR must be an absolute path, got '${WORKDIR}'" ;;
esac
[[ "$FC_VERSION" =~ ^[0-9A-Za-z.+-]+$ ]] || die 2 "FEDSTACK_FC_VERSION '${FC_VERSION}' is not a version"
case "$PASSWORD_FILE" in
  "" | /?*) ;;
  *) die 2 "FEDSTACK_PASSWORD_FILE must be an absolute path, got '${PASSWORD_FILE}'" ;;
esac
if [ -n "$FC_PASSWORD" ] && [ -z "$PASSWORD_FILE" ]; then
  die 2 "FEDSTACK_FC_PASSWORD is set but FEDSTACK_PASSWORD_FILE is not: where should it go?"
fi

# Privileged steps go through sudo when the login user is not root (cloud images: a sudoer).
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die 2 "not root and no sudo: cannot provision as $(id -un)"
  SUDO=(sudo -n)
fi
LOGIN_USER="$(id -un)"
LOGIN_GROUP="$(id -gn)"

# 1. Debian/Ubuntu packages: only the missing ones, and `apt-get update` only if any are missing.
missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_opts=(-o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT}" -o Dpkg::Use-Pty=0 -qq)
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update >/dev/null ||
    die 4 "apt-get update failed: is the distribution mirror reachable from this host?"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
    --no-install-recommends "${missing[@]}" >/dev/null ||
    die 4 "apt-get install ${missing[*]} failed"
  changed "packages(${missing[*]})"
fi

# 2. The Docker engine must run. Where there is no systemd (a chroot, a container) it cannot be
#    started, and that is said plainly instead of failing later inside the controller.
docker_ok=0
if docker_err="$("${SUDO[@]}" docker info 2>&1 >/dev/null)"; then
  docker_ok=1
elif [ -d /run/systemd/system ]; then
  if ! systemctl is-enabled --quiet docker 2>/dev/null || ! systemctl is-active --quiet docker; then
    "${SUDO[@]}" systemctl enable --now docker >/dev/null 2>&1 && changed "docker-started"
  fi
  if docker_err="$("${SUDO[@]}" docker info 2>&1 >/dev/null)"; then docker_ok=1; fi
else
  docker_err="no systemd on this host (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)): a chroot or container?"
fi
if [ "$docker_ok" -eq 0 ]; then
  msg="Docker engine cannot start here: ${docker_err//$'\n'/ }"
  if [ "$DOCKER_REQUIRED" = "1" ]; then
    die 3 "$msg (FeatureCloud apps need it; set FEDSTACK_DOCKER_REQUIRED=0 to provision anyway)"
  fi
  say "WARNING: $msg; continuing because FEDSTACK_DOCKER_REQUIRED=0"
fi

# The login user runs the controller, which talks to Docker: it joins the docker group.
if [ "$LOGIN_USER" != root ] && ! id -nG "$LOGIN_USER" | tr ' ' '\n' | grep -qx docker; then
  "${SUDO[@]}" usermod -aG docker "$LOGIN_USER"
  changed "docker-group(${LOGIN_USER})"
fi

# 3. fedstack's working directory, owned by the login user.
if [ ! -d "$WORKDIR" ]; then
  "${SUDO[@]}" install -d -m 0750 -o "$LOGIN_USER" -g "$LOGIN_GROUP" "$WORKDIR"
  changed "workdir(${WORKDIR})"
fi

# 4. The FeatureCloud CLI, pinned, in its own venv under the working directory. pip trusts the
#    system's CA store, not only its own bundle: hosts behind an institution's TLS proxy have
#    that proxy's CA installed there.
if [ -z "${PIP_CERT:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
VENV="$WORKDIR/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  changed "venv"
fi
have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("featurecloud"))' 2>/dev/null || true)"
if [ "$have" != "$FC_VERSION" ]; then
  say "installing featurecloud==${FC_VERSION} (had: ${have:-none})"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
    "featurecloud==${FC_VERSION}" >&2 ||
    die 4 "pip could not install featurecloud==${FC_VERSION}: is PyPI (or PIP_INDEX_URL) reachable from this host?"
  changed "featurecloud(${have:-none}->${FC_VERSION})"
fi

# The controller is started over non-interactive SSH, whose PATH does not know the venv.
LINK=/usr/local/bin/featurecloud
if [ "$(readlink "$LINK" 2>/dev/null || true)" != "$VENV/bin/featurecloud" ]; then
  "${SUDO[@]}" ln -sfn "$VENV/bin/featurecloud" "$LINK"
  changed "link(${LINK})"
fi

# 5. A host-held site: fcapi in its own venv (the host logs in and joins: python -m fcapi
#    site-join), and the password file from the site's own secret, 0600, the login user's.
if [ -n "$FCAPI_PACKAGE" ]; then
  FCAPI_VENV="$WORKDIR/fcapi"
  if [ ! -x "$FCAPI_VENV/bin/python" ]; then
    python3 -m venv "$FCAPI_VENV"
    changed "fcapi-venv"
  fi
  if ! "$FCAPI_VENV/bin/python" -c 'import fcapi.cli.site' 2>/dev/null; then
    say "installing ${FCAPI_PACKAGE} (fcapi) for the host-held site"
    "$FCAPI_VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
      "$FCAPI_PACKAGE" >&2 ||
      die 4 "pip could not install ${FCAPI_PACKAGE}: is PIP_INDEX_URL (or the wheel) reachable from this host?"
    changed "fcapi"
  fi
fi
if [ -n "$FC_PASSWORD" ]; then
  have_pw="$("${SUDO[@]}" cat "$PASSWORD_FILE" 2>/dev/null || true)"
  have_mode="$("${SUDO[@]}" stat -c %a "$PASSWORD_FILE" 2>/dev/null || true)"
  if [ "$have_pw" != "$FC_PASSWORD" ] || [ "$have_mode" != 600 ]; then
    # printf is a builtin: the password reaches install on a pipe, never an argv
    printf '%s\n' "$FC_PASSWORD" |
      "${SUDO[@]}" install -D -m 0600 -o "$LOGIN_USER" -g "$LOGIN_GROUP" /dev/stdin "$PASSWORD_FILE"
    changed "password-file(${PASSWORD_FILE})"
  fi
  unset have_pw FC_PASSWORD FEDSTACK_FC_PASSWORD
fi

if [ "${#CHANGED[@]}" -eq 0 ]; then
  echo "${TAG}: changed: nothing"
else
  echo "${TAG}: changed: ${CHANGED[*]}"
fi
