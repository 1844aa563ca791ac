"""HTTP blueprints: FHIR REST and $triage, health, docs."""
