"""Container images the pipeline runs: entry points and the contract each honours."""
