# SPDX-License-Identifier: AGPL-3.0-or-later
# Sourced by tools/check and tools/demo: install the Debian packages Portier needs, if any
# is missing. No-op when everything is present; apt-get update only when it must install.
# Keep this list in sync with README.md ("Dependencies").

# The libraries Portier builds against (also the sysroot of tools/cross).
PORTIER_LIB_DEV_PACKAGES=(
  libsystemd-dev libsqlite3-dev libgpiod-dev libnfc-dev libmosquitto-dev libmicrohttpd-dev
  libinih-dev libjansson-dev libsodium-dev libcmocka-dev libseccomp-dev libfreefare-dev
  nettle-dev libcurl4-openssl-dev
)

PORTIER_DEB_PACKAGES=(
  build-essential cmake pkg-config "${PORTIER_LIB_DEV_PACKAGES[@]}"
  scdoc groff-base bash-completion
  python3 sqlite3 tzdata
  libnfc-bin libnfc-examples libfreefare-bin
  mosquitto mosquitto-clients python3-paho-mqtt python3-aiosmtpd openssl
  curl python3-icalendar python3-jsonschema python3-cryptography chromium
  wrk nginx-light valgrind
  gettext
  clang libclang-rt-dev
)

# tools/package (Debian packages, lintian) and tools/cross (cross compilers, qemu-user).
PORTIER_PACKAGE_DEB_PACKAGES=(debhelper dpkg-dev fakeroot lintian)
PORTIER_CROSS_DEB_PACKAGES=(qemu-user-static debian-archive-keyring)

# Install the named Debian packages that are missing (apt-get, through sudo if not root).
portier_install_packages() {
  local missing=() p sudo=""
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

portier_install_deps() {
  local extra=()
  # Node.js and npm drive the browser tests (playwright-core from npm, Debian's chromium).
  # Any Node.js 18+ will do: install Debian's only when none is on PATH, so a Node.js from
  # elsewhere (with its own npm) is left alone.
  if ! command -v npm >/dev/null 2>&1; then
    extra+=(nodejs npm)
  fi
  portier_install_packages "${PORTIER_DEB_PACKAGES[@]}" "${extra[@]}"
}

# Configure and build into $1 (extra cmake arguments follow).
portier_build() {
  local dir=$1; shift
  cmake -S "$PORTIER_ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}
