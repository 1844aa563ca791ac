"""FHIR in one layer: reading requests, checking resources, building responses."""
