"""FHIR R4 for the SPST: the resources the hub answers with (Task, OperationOutcome,
CapabilityStatement), built as ``fhir.resources`` R4B models from what the hub knows."""
