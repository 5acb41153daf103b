"""CDK constructs of the ML pipeline: one file per concern; stacks only compose."""
