"""Token REST API of the registry (DRF): POST version, GET status, POST alias move."""
