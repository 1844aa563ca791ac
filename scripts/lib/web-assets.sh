#!/usr/bin/env bash
# The browser files the web app (/app/) serves itself: LHC-Forms and fhirclient.js, pinned in
# web/package.json and web/package-lock.json (npm ci checks their integrity hashes), copied into
# web/dist/ (git-ignored), which the service serves and the Dockerfile copies. Nothing comes from a
# CDN at run time. Needs npm; without it /app/ says that the form files are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
dist=web/dist
stamp=$dist/.installed
if [ -f "$stamp" ] && [ ! web/package-lock.json -nt "$stamp" ] && [ ! "$0" -nt "$stamp" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "web-assets: npm is missing, so /app/ cannot show the form (apt-get install npm)" >&2
  exit 0
fi
echo "web-assets: installing LHC-Forms and fhirclient.js (npm ci) into $dist" >&2
(cd web && npm ci --silent --no-audit --no-fund --legacy-peer-deps --ignore-scripts) \
  >.web-assets.log 2>&1 || { tail -n 20 .web-assets.log >&2; echo "web-assets: npm ci failed" >&2; exit 1; }
rm -f .web-assets.log
lforms=web/node_modules/lforms/dist/lforms
rm -rf "$dist.tmp" && mkdir -p "$dist.tmp/lforms" "$dist.tmp/fhirclient"
# Only the files the page loads (the package is 30 MB), flat, so styles.css finds its two icons.
cp "$lforms/webcomponent/styles.css" "$lforms/webcomponent/down_arrow_gray_10_10.png" \
   "$lforms/webcomponent/magnifying_glass.png" "$lforms/webcomponent/assets/lib/zone.min.js" \
   "$lforms/webcomponent/lhc-forms.js" "$lforms/fhir/R4/lformsFHIR.min.js" \
   web/node_modules/lforms/LICENSE.md "$dist.tmp/lforms/"
cp web/node_modules/fhirclient/build/fhir-client.min.js web/node_modules/fhirclient/LICENSE \
   "$dist.tmp/fhirclient/"
chmod -R a+rX,go-w "$dist.tmp"  # the image copies them as they are (uid 10001 reads them)
rm -rf "$dist" && mv "$dist.tmp" "$dist"
touch "$stamp"
