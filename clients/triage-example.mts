// Triage QuestionnaireResponses through openapi-fetch with the types openapi-typescript generated
// from openapi.yaml (docs/clients.md). Compile next to the generated schema.d.ts, then:
//   node triage-example.mjs http://127.0.0.1:8080 examples/*.json
// Prints one JSON line per request (the disposition and the ServiceRequest proposals, read through
// the generated types, and the Content-Type sent); tests/e2e/test_clients.py checks every line.
import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

function summary(bundle: Schemas["TriageBundle"]) {
  let disposition: Schemas["Disposition"] | undefined;
  const proposals: Schemas["ServiceRequest"][] = [];
  for (const { resource } of bundle.entry) {
    // resourceType tells the entries apart, and narrows each resource to its own type.
    if (resource.resourceType === "RiskAssessment") {
      disposition = resource.extension[0].valueCodeableConcept.coding[0].code;
    } else if (resource.resourceType === "ServiceRequest") {
      proposals.push(resource);
    }
  }
  if (disposition === undefined) throw new Error("no RiskAssessment in the Bundle");
  return {
    disposition,
    proposals: proposals.map((sr) => ({
      priority: sr.priority,
      code: sr.code.text,
      reasons: (sr.reasonCode ?? []).map((reason) => reason.text),
    })),
  };
}

const [baseUrl, ...files] = process.argv.slice(2);
const sent: string[] = [];
const client = createClient<paths>({
  baseUrl,
  // openapi-fetch sends application/json unless told otherwise; the spec's media type is FHIR's.
  headers: { "Content-Type": "application/fhir+json" },
  fetch: (request: Request) => {
    sent.push(request.headers.get("content-type") ?? "");
    return fetch(request);
  },
});

for (const file of files) {
  // examples/ holds Parameters bodies too: resourceType narrows the request to its type.
  const qr: Schemas["TriageRequest"] = JSON.parse(readFileSync(file, "utf8"));
  const bodies: [string, Schemas["TriageRequest"]][] = [[file, qr]];
  if (file === files[0] && qr.resourceType === "QuestionnaireResponse") {
    bodies.push([`${file} (Parameters)`, {
      resourceType: "Parameters",
      parameter: [
        { name: "questionnaireResponse", resource: qr },
        { name: "rulesVersion", valueString: "1.0.0" },
      ],
    }]);
  }
  for (const [label, body] of bodies) {
    const { data, error } = await client.POST("/fhir/QuestionnaireResponse/$triage", { body });
    if (!data) throw new Error(`${label}: not triaged: ${JSON.stringify(error)}`);
    console.log(JSON.stringify({ request: label, contentType: sent.at(-1), ...summary(data) }));
  }
}

// An error comes back typed as an OperationOutcome: here the required subject is missing.
const noSubject: Schemas["QuestionnaireResponse"] = { ...JSON.parse(readFileSync(files[0], "utf8")), subject: {} };
const { error } = await client.POST("/fhir/QuestionnaireResponse/$triage", { body: noSubject });
if (!error) throw new Error("a QuestionnaireResponse without subject was triaged");
console.log(JSON.stringify({
  request: "no subject",
  contentType: sent.at(-1),
  issues: error.issue.map((issue) => issue.expression),
}));
