#!/bin/sh
# Debian packages the app and its tests need; installs only what is missing (quick and silent when all are there).
#   scripts/install-system.sh run    -> Tesseract OCR (English + Korean)
#   scripts/install-system.sh test   -> the above + Korean fonts (test PDFs) + Chromium (browser tests)
# A fresh machine often runs unattended-upgrades at boot, holding the apt/dpkg locks for minutes: this waits for
# them (at most APT_LOCK_WAIT seconds, default 600) instead of failing at once.
set -e
want="tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor"
[ "${1:-run}" = "test" ] && want="$want fonts-nanum chromium"
missing=""
for pkg in $want; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: no apt-get; please install:$missing" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
LOCK_WAIT="${APT_LOCK_WAIT:-600}"

# Another package manager at work: apt, apt-get, dpkg, unattended-upgrades (its process name is cut to 15 chars).
busy() {
    command -v pgrep >/dev/null 2>&1 || return 1
    pgrep -x 'apt|apt-get|aptitude|dpkg|unattended-upgr|unattended-upgrade|packagekitd' >/dev/null 2>&1
}

wait_for_apt() {
    waited=0
    while busy; do
        if [ "$waited" -eq 0 ]; then
            echo "waiting for another package manager to finish (unattended-upgrades at boot?), at most ${LOCK_WAIT} s..." >&2
        fi
        if [ "$waited" -ge "$LOCK_WAIT" ]; then
            echo "error: apt/dpkg is still busy after ${LOCK_WAIT} s (see: ps -C apt,apt-get,dpkg,unattended-upgr)." >&2
            echo "       Run this script again when it is done, or set APT_LOCK_WAIT=<seconds> to wait longer." >&2
            exit 1
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

# DPkg::Lock::Timeout makes apt-get itself wait for the locks too (apt >= 1.9.11), closing the gap between
# the check above and apt-get taking the locks.
apt_get() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$LOCK_WAIT" "$@"
}

echo "installing Debian packages:$missing"
wait_for_apt
if ! apt_get update -qq; then
    echo "error: apt-get update failed (the apt lists lock busy for more than ${LOCK_WAIT} s, or no network)." >&2
    exit 1
fi
wait_for_apt
if ! apt_get install -y -qq --no-install-recommends $missing >/dev/null; then
    echo "error: could not install:$missing (see the apt-get message above; the dpkg lock busy for more than" >&2
    echo "       ${LOCK_WAIT} s? then run this script again later, or set APT_LOCK_WAIT=<seconds>)." >&2
    exit 1
fi
