"""Amazon States Language (JSONPath query language): parse, check and interpret definitions."""
