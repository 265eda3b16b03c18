#!/bin/sh
# Debian packages the app and its tests need; installs only what is missing.
#   scripts/install-system.sh run    -> Tesseract OCR (English + Korean)
#   scripts/install-system.sh test   -> the above + Korean fonts (test PDFs) + Chromium (browser tests)
#                                       + espeak-ng and ffmpeg (spoken test audio, audio split in parts)
set -e
want="tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor"
[ "${1:-run}" = "test" ] && want="$want fonts-nanum chromium espeak-ng ffmpeg"
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
echo "installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
