"""What is specific to this product's pipelines: the bundled sample datasets and the run summary."""
