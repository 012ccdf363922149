"""One module per outside thing: providers, the test model, stores, the CLI."""
