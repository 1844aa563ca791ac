"""CDS Hooks 2.0.1: the triage offered where clinicians work (docs/cds-hooks.md).

services.py   the two services and their prefetch templates (discovery)
schemas.py    the request envelope and feedback, validated with marshmallow
answers.py    the QuestionnaireResponse of a call: from the prefetch, or fetched from the EHR
cards.py      the card built from the triage core's result
trust.py      the CDS client's JWT
views.py      the blueprint: discovery, the service calls, feedback (the app factory registers it)
"""
