// The clinician page: LHC-Forms renders the service's Questionnaire, Triage posts the
// QuestionnaireResponse to $triage, and the Bundle is shown for a person. After an EHR launch
// (launch.js), fhirclient.js completes the sign-in here and "Save to record" writes the form, the
// triage result and the ticked proposals to the EHR in one transaction, the service's own Ready to
// store form ($triage?bundle-type=transaction). Tokens stay in fhirclient's sessionStorage.
"use strict";
(function () {
  const FHIR_JSON = "application/fhir+json";
  const DISPOSITION_EXT = "http://legtriage.example.org/fhir/StructureDefinition/triage-disposition";
  const PRIORITY_WORDS = {stat: "Immediately (stat)", asap: "As soon as possible", urgent: "Urgent",
                          routine: "Routine"};
  const config = JSON.parse(document.getElementById("legtriage-config").textContent);
  const questionnaire = config.questionnaire;
  const formElement = document.getElementById("form");
  const triageButton = document.getElementById("triage");
  const resultBox = document.getElementById("result");
  const errorsBox = document.getElementById("errors");
  const items = {};  // linkId -> Questionnaire item
  (function index(list) {
    for (const item of list || []) { items[item.linkId] = item; index(item.item); }
  })(questionnaire.item);

  // The person at the desk has no record here: a one-off, meaningless identifier lets the service
  // build its RiskAssessment without identifying anyone (a urn:uuid reference would point at
  // nothing, and the service refuses one).
  const deskSubject = {identifier: {system: "urn:ietf:rfc:3986", value: "urn:uuid:" + uuid()},
                       type: "Patient", display: "The person at the desk (not identified)"};
  let smart = null;      // fhirclient Client after an EHR launch
  let patient = null;    // the EHR's Patient
  let sent = null;       // the QuestionnaireResponse of the last triage

  // ---- small DOM helpers ------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function notice(text) {
    const box = document.getElementById("notice");
    box.hidden = !text;
    box.textContent = text || "";
  }

  // ---- start ------------------------------------------------------------------------------------
  async function start() {
    if (isEhrLaunch()) {
      try {
        smart = await FHIR.oauth2.ready();
        patient = await smart.patient.read();
        showPatient(patient);
      } catch (err) {
        smart = null;
        notice("The sign-in from the EHR could not be completed, so nothing can be saved to a " +
               "record. Open the form from the EHR again. Details: " + message(err));
      }
    }
    try {
      await LForms.Util.addFormToPage(questionnaire, formElement, {fhirVersion: "R4"});
      const loading = document.getElementById("form-loading");
      if (loading) loading.remove();
      triageButton.disabled = false;
    } catch (err) {
      notice("The questionnaire could not be displayed: " + message(err));
    }
  }

  function isEhrLaunch() {
    const params = new URLSearchParams(location.search);
    return (params.has("code") || params.has("error") || params.has("state")) ||
           sessionStorage.getItem("SMART_KEY") !== null;
  }

  function message(err) {
    return err && err.message ? err.message : String(err);
  }

  function showPatient(p) {
    const name = (p.name || [])[0] || {};
    const shown = name.text || [...(name.given || []), name.family].filter(Boolean).join(" ") ||
                  "Unnamed patient";
    const facts = [p.gender, p.birthDate ? "born " + p.birthDate : null, "record " + p.id]
      .filter(Boolean).join(" · ");
    const box = document.getElementById("patient");
    box.replaceChildren(el("p", {className: "patient-name"}, shown),
                        el("p", {className: "patient-facts"}, facts));
    // SMART: an EHR that shows its own banner around the app says need_patient_banner: false.
    box.hidden = smart.state.tokenResponse.need_patient_banner === false;
  }

  // ---- triage -----------------------------------------------------------------------------------
  async function triage() {
    clearErrors();
    triageButton.disabled = true;
    const qr = LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", formElement,
                                           patient ? {subject: patient} : {});
    if (!patient) qr.subject = deskSubject;
    qr.status = "completed";
    qr.authored = qr.authored || new Date().toISOString();
    const headers = serviceHeaders();
    let response, body;
    try {
      response = await fetch(config.triageUrl, {method: "POST", headers, body: JSON.stringify(qr)});
      body = await response.json().catch(() => null);
    } catch (err) {
      triageButton.disabled = false;
      showErrors("The triage service cannot be reached. Check the network connection and press " +
                 "Triage again.", []);
      return;
    }
    triageButton.disabled = false;
    if (response.ok && body && body.resourceType === "Bundle") {
      sent = qr;
      showResult(body);
      return;
    }
    resultBox.hidden = true;
    if (response.status === 401) {
      showErrors("This service needs sign-in. Open the form from the patient's record in the EHR " +
                 "(SMART launch), which signs you in.", []);
    } else if (body && body.resourceType === "OperationOutcome") {
      showErrors("The form could not be triaged yet. Please check the questions marked below.",
                 (body.issue || []).filter((i) => i.severity !== "warning" &&
                                                 i.severity !== "information"), qr);
    } else {
      showErrors(`The triage service answered with an error (${response.status}). Try again; if ` +
                 "it keeps happening, tell the service's operator.", []);
    }
  }

  function serviceHeaders() {
    const headers = {"Content-Type": FHIR_JSON, Accept: FHIR_JSON};
    // With the service's auth on, the EHR's access token is the page's credential (docs/app.md).
    if (config.authEnabled && smart && smart.state.tokenResponse) {
      headers.Authorization = "Bearer " + smart.state.tokenResponse.access_token;
    }
    return headers;
  }

  // ---- errors next to their questions -----------------------------------------------------------
  function clearErrors() {
    errorsBox.hidden = true;
    errorsBox.replaceChildren();
    for (const old of document.querySelectorAll(".item-error")) old.remove();
    for (const q of document.querySelectorAll(".has-error")) q.classList.remove("has-error");
  }

  function showErrors(summary, issues, qr) {
    const list = el("ul");
    for (const issue of issues) {
      const linkId = linkIdOf(issue, qr);
      const text = plainWords(issue, linkId);
      const question = linkId ? questionElement(linkId) : null;
      if (question) {
        question.classList.add("has-error");
        question.append(el("p", {className: "item-error"}, "⚠ " + text));
      }
      list.append(el("li", {}, linkId && items[linkId] ? `${items[linkId].text}: ${text}` : text));
    }
    errorsBox.replaceChildren(el("p", {}, el("strong", {}, summary)), issues.length ? list : "");
    errorsBox.hidden = false;
    errorsBox.scrollIntoView({block: "nearest"});
  }

  // The question an OperationOutcome issue is about: its FHIRPath expression walked through the
  // QuestionnaireResponse that was sent, else a linkId the diagnostics quote.
  function linkIdOf(issue, qr) {
    for (const expression of issue.expression || []) {
      let node = qr, found = null;
      const steps = expression.replace(/^QuestionnaireResponse\.?/, "").match(/[a-zA-Z]+(\[\d+\])?/g) || [];
      for (const step of steps) {
        const [, name, index] = step.match(/^([a-zA-Z]+)(?:\[(\d+)\])?$/);
        node = node && node[name];
        if (Array.isArray(node)) node = index === undefined ? null : node[Number(index)];
        if (node && node.linkId) found = node.linkId;
      }
      if (found && items[found]) return found;
    }
    for (const quoted of (issue.diagnostics || "").matchAll(/'([^']+)'/g)) {
      if (items[quoted[1]]) return quoted[1];
    }
    return null;
  }

  function plainWords(issue, linkId) {
    if (issue.code === "required" && linkId) return "Please answer this question: the triage needs it.";
    let text = issue.diagnostics || (issue.details && issue.details.text) || "This answer is not accepted.";
    if (linkId && items[linkId]) text = text.split(`'${linkId}'`).join(`"${items[linkId].text}"`);
    return text;
  }

  function questionElement(linkId) {
    const wanted = items[linkId].text;
    for (const label of formElement.querySelectorAll(".lhc-de-label .question")) {
      if (label.textContent.trim() === wanted) return label.closest("lhc-item") || label.parentElement;
    }
    return null;
  }

  // ---- the result -------------------------------------------------------------------------------
  function showResult(b) {
    const resources = (b.entry || []).map((e) => e.resource);
    const risk = resources.find((r) => r.resourceType === "RiskAssessment");
    const proposals = resources.filter((r) => r.resourceType === "ServiceRequest");
    const warnings = resources.filter((r) => r.resourceType === "OperationOutcome")
      .flatMap((o) => o.issue || []);
    const ext = (risk.extension || []).find((e) => e.url === DISPOSITION_EXT);
    const code = ext.valueCodeableConcept.coding[0].code;
    const meaning = config.dispositions[code] || {display: code, definition: ""};
    const method = (risk.method && risk.method.coding || [])[0] || {};
    const version = method.version || "";
    const safety = new Set(config.safetyNet[version] || []);
    const openings = (config.safetyNetOpenings || {})[version] || [];
    const isSafety = (l) => safety.has(l.text) || openings.some((o) => l.text.startsWith(o));
    const lines = (risk.mitigation || "").split("\n").filter(Boolean).map(splitSource);
    const advice = lines.filter((l) => !isSafety(l));
    const safetyNet = lines.filter(isSafety);

    const parts = [
      el("div", {className: `banner banner-${code}`, "data-disposition": code},
         el("p", {className: "banner-label"}, "Triage result"),
         el("h2", {className: "banner-word"}, el("span", {className: "banner-icon", "aria-hidden": "true"},
                                                    {emergency: "!!!", urgent: "!!", routine: "!", "self-care": "✓"}[code] || ""),
            " ", meaning.display),
         el("p", {className: "banner-now"}, el("strong", {}, "What to do now: "), meaning.definition)),
    ];
    if (risk.prediction && risk.prediction.length) {
      parts.push(el("section", {className: "causes", "aria-labelledby": "causes-h"},
        el("h3", {id: "causes-h"}, "Likely causes"),
        el("ol", {}, risk.prediction.map(causeItem))));
    }
    if (proposals.length) {
      parts.push(el("section", {className: "proposals", "aria-labelledby": "proposals-h"},
        el("h3", {id: "proposals-h"}, "Proposals for a clinician"),
        el("p", {className: "hint"}, "Suggestions, not orders: tick the ones you accept."),
        el("ul", {className: "proposal-list"}, proposals.map(proposalItem))));
    }
    if (advice.length) {
      parts.push(el("section", {className: "advice", "aria-labelledby": "advice-h"},
        el("h3", {id: "advice-h"}, "Advice"), el("ul", {}, advice.map(adviceItem))));
    }
    if (safetyNet.length) {
      parts.push(el("section", {className: "safety-net", "aria-labelledby": "safety-h"},
        el("h3", {id: "safety-h"}, "Safety net: when to get help at once"),
        el("ul", {}, safetyNet.map(adviceItem))));
    }
    if (warnings.length) {
      parts.push(el("section", {className: "warnings", "aria-labelledby": "warnings-h"},
        el("h3", {id: "warnings-h"}, "Notes from the service"),
        el("ul", {}, warnings.map((w) => el("li", {}, w.diagnostics || "")))));
    }
    parts.push(el("p", {className: "rules-version"},
      `Rules: ${method.display || "version " + version} · ${risk.occurrenceDateTime || ""} · ` +
      "Decision support for a clinician, not a diagnosis."));
    const actions = el("p", {className: "actions no-print"});
    const print = el("button", {type: "button", id: "print"}, "Print");
    print.addEventListener("click", () => window.print());
    actions.append(print);
    if (smart && patient) {
      const save = el("button", {type: "button", id: "save", className: "primary"}, "Save to record");
      save.addEventListener("click", () => saveToRecord(save, proposals, version));
      actions.prepend(save);
    }
    parts.push(actions, el("div", {id: "saved", role: "status"}));
    resultBox.replaceChildren(...parts);
    resultBox.hidden = false;
    resultBox.querySelector(".banner").scrollIntoView({block: "start"});
  }

  // "Why" parts of the rule versions written in clinical words (one reason a line) look like
  // 'Reason. Reported: answers. From “Source title”: “quoted passage”'; those of 1.0.0 and 1.1.0
  // look like 'Reason [rule] (evidence). Source FILE: "quoted passage"', sometimes with several
  // sources or a closing "Clinical common sense: ..." note, joined by " | ".
  const LEGACY_SOURCE = /Source ([\w.-]+): "([^"]*)"/g;
  const SOURCE_BY_TITLE = /From \u201c([^\u201d]*)\u201d: \u201c([^\u201d]*)\u201d/g;
  function causeItem(prediction) {
    const risk = (prediction.qualitativeRisk && prediction.qualitativeRisk.coding || [])[0] || {};
    const parts = (prediction.rationale || "").split(" | ").flatMap((p) => p.split("\n")).filter(Boolean);
    const reasons = parts.map((part) => {
      const legacy = [...part.matchAll(LEGACY_SOURCE)];
      const sources = legacy.length ? legacy : [...part.matchAll(SOURCE_BY_TITLE)];
      if (!sources.length) return el("li", {}, part);
      const why = part.slice(0, sources[0].index).trim();
      const last = sources[sources.length - 1];
      const after = part.slice(last.index + last[0].length).trim();
      const label = (m) => legacy.length ? `Source passage (${m[1]})` : `Source: ${m[1]}`;
      return el("li", {}, el("span", {className: "why"}, why),
        sources.map((m) => el("details", {}, el("summary", {}, label(m)),
                                el("blockquote", {}, m[2]))),
        after ? el("p", {className: "why-note"}, after) : null);
    });
    return el("li", {className: "cause"},
      el("p", {className: "cause-name"}, el("strong", {}, prediction.outcome.text ||
        ((prediction.outcome.coding || [])[0] || {}).display), risk.display ? ` — ${risk.display}` : ""),
      el("p", {className: "why-label"}, "Why:"), el("ul", {className: "reasons"}, reasons));
  }

  function proposalItem(sr, index) {
    const id = `proposal-${index}`;
    const priority = PRIORITY_WORDS[sr.priority] || sr.priority || "";
    const note = (sr.note || [])[0];
    return el("li", {className: "proposal"},
      el("input", {type: "checkbox", id, value: String(index), "aria-describedby": note ? id + "-note" : null}),
      el("label", {for: id}, el("span", {className: `priority priority-${sr.priority}`}, priority),
         " ", sr.code.text || ((sr.code.coding || [])[0] || {}).display),
      note ? el("p", {className: "proposal-note", id: id + "-note"}, note.text) : null);
  }

  function splitSource(line) {
    const m = line.match(/^(.*) \(source: ([^)]*)\)$/s);
    return m ? {text: m[1], source: m[2]} : {text: line, source: ""};
  }

  function adviceItem(line) {
    return el("li", {}, line.text, line.source ? el("span", {className: "source"}, ` (source: ${line.source})`) : "");
  }

  // ---- Save to record (EHR launch only) ---------------------------------------------------------
  // One transaction, made by the service itself: $triage?bundle-type=transaction (Ready to store,
  // the same rules version as the result shown) gives the QuestionnaireResponse, the RiskAssessment
  // and every proposal as conditional creates whose references resolve inside the Bundle; the
  // proposals not ticked are left out (nothing refers to them). Saving twice creates nothing new.
  async function readyToStore(version) {
    const qr = JSON.parse(JSON.stringify(sent));
    delete qr.id;  // the EHR does not have it yet: it goes into the transaction
    qr.subject = {reference: "Patient/" + patient.id};
    const url = new URL(config.triageUrl, location.href);
    url.searchParams.set("bundle-type", "transaction");
    if (version) url.searchParams.set("rules-version", version);
    const response = await fetch(url, {method: "POST", headers: serviceHeaders(), body: JSON.stringify(qr)});
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || body.type !== "transaction") {
      const why = body && body.issue ? body.issue.map((i) => i.diagnostics).join(" ") : `status ${response.status}`;
      throw new Error("the triage service did not make the record: " + why);
    }
    return body;
  }

  async function saveToRecord(button, proposals, version) {
    const status = document.getElementById("saved");
    const tickedIndexes = [...resultBox.querySelectorAll(".proposal input:checked")].map((box) => Number(box.value));
    const ticked = tickedIndexes.map((i) => proposals[i]);
    button.disabled = true;
    status.textContent = "Saving…";
    try {
      const bundle = await readyToStore(version);
      const requests = bundle.entry.filter((e) => e.resource.resourceType === "ServiceRequest");
      const keep = new Set(tickedIndexes.map((i) => requests[i]));
      bundle.entry = bundle.entry.filter((e) => e.resource.resourceType !== "ServiceRequest" || keep.has(e));
      const answer = await smart.request({
        url: smart.state.serverUrl.replace(/\/$/, "") + "/", method: "POST",
        headers: {"Content-Type": FHIR_JSON, Accept: FHIR_JSON},
        body: JSON.stringify(bundle),
      });
      const where = (answer.entry || []).map((e) => e.response && e.response.location).filter(Boolean);
      const what = ticked.length
        ? `the questionnaire, the triage result and ${ticked.length} proposal${ticked.length > 1 ? "s" : ""} (` +
          ticked.map((sr) => sr.code.text).join("; ") + ")"
        : "the questionnaire and the triage result (no proposals were ticked)";
      status.replaceChildren(el("p", {className: "saved-ok"},
        `Saved to the record of ${document.querySelector(".patient-name").textContent}: ${what}.`),
        where.length ? el("p", {className: "saved-where"}, "The EHR filed them as: " + where.join(", ")) : "");
    } catch (err) {
      button.disabled = false;
      status.replaceChildren(el("p", {className: "saved-failed"},
        "Nothing was saved: the EHR refused or could not be reached. Try Save to record again. " +
        "Details: " + message(err)));
    }
  }

  // On paper the source passages cannot be expanded: print them open.
  window.addEventListener("beforeprint", () => {
    for (const details of resultBox.querySelectorAll("details")) details.open = true;
  });
  triageButton.addEventListener("click", triage);
  start();
})();
