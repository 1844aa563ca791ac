// SMART App Launch 2.x, EHR launch: fhirclient.js reads iss and launch from the address, fetches
// {iss}/.well-known/smart-configuration, and sends the browser to the EHR's authorization endpoint
// with a random state and a PKCE S256 challenge (required: an EHR that does not offer S256 is
// refused). It keeps the state and the verifier in sessionStorage, for this tab only.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("legtriage-config").textContent);
  // SMART asks for at least 122 bits of entropy in state; fhirclient's own is 16 characters (~95
  // bits), so the app makes one of 256 bits.
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const state = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  FHIR.oauth2.authorize({
    stateKey: state,
    clientId: config.clientId,
    scope: config.scope,
    redirectUri: config.redirectUri,
    pkceMode: "required",
  }).catch(function (err) {
    document.getElementById("launch-status").hidden = true;
    const box = document.getElementById("launch-error");
    box.hidden = false;
    box.textContent = "The EHR launch did not work: the EHR's sign-in could not be reached or does " +
      "not offer what this app needs (SMART with PKCE S256). Close this window and open the form " +
      "from the EHR again. Details: " + (err && err.message ? err.message : String(err));
  });
})();
