#!/usr/bin/env bash
# Regenerates the app icons in icons/ (committed; run only to change them). Needs ImageMagick 6
# and icnsutils from Debian (`apt-get install imagemagick icnsutils`): a rounded navy square with a white hull and a
# container stack, drawn at 256 px and scaled to 128 and 32 px, all RGBA PNG.
set -euo pipefail
cd "$(dirname "$0")/.."
im=/usr/bin/convert-im6.q16
[ -x "$im" ] || im=/usr/bin/convert
out=icons
mkdir -p "$out"
"$im" -size 256x256 xc:none \
    -fill '#1d3557' -draw 'roundrectangle 8,8 247,247 44,44' \
    -fill '#e63946' -draw 'rectangle 70,64 120,112' \
    -fill '#f1faee' -draw 'rectangle 128,64 186,112' \
    -fill '#a8dadc' -draw 'rectangle 98,118 158,166' \
    -fill '#f1faee' -draw 'polygon 40,172 216,172 190,214 66,214' \
    -define png:color-type=6 "PNG32:$out/icon.png"
for s in 128 32; do
    "$im" "$out/icon.png" -resize "${s}x${s}" -define png:color-type=6 "PNG32:$out/${s}x${s}.png"
done
cp "$out/icon.png" "$out/256x256.png"
file "$out"/*.png
# Windows: the same pictures packed into icons/icon.ico (tauri-build's resource step needs one).
python3 scripts/png-to-ico.py "$out/icon.ico" "$out/32x32.png" "$out/128x128.png" "$out/256x256.png"
# macOS: the same pictures as icons/icon.icns (png2icns from icnsutils; the app bundle's icon).
png2icns "$out/icon.icns" "$out/32x32.png" "$out/128x128.png" "$out/256x256.png"
