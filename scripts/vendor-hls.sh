#!/usr/bin/env bash
# Vendors hls.js (Apache-2.0, by Dailymotion and contributors) into host/ui/vendor/ for the
# dashboard's HLS player. The file is committed, so builds and tests never download it;
# run this only to change the version. It comes from the npm registry through `npm pack`
# and is checked against the tarball's known SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.7.4
SHA256=e4ab3d5d13f7cca9ef241d098f39686e19fd451831ba07dc9943482fd5ff75c7
OUT=host/ui/vendor

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "hls.js@$VERSION" --silent >/dev/null)
echo "$SHA256  $work/hls.js-$VERSION.tgz" | sha256sum -c --quiet
tar -xzf "$work/hls.js-$VERSION.tgz" -C "$work"
mkdir -p "$OUT"
# The ES module build, without its source-map comment (the map is not shipped).
grep -v '^//# sourceMappingURL=' "$work/package/dist/hls.min.mjs" > "$OUT/hls.min.mjs"
cp "$work/package/LICENSE" "$OUT/hls.js.LICENSE"
echo "hls.js $VERSION -> $OUT/hls.min.mjs"
