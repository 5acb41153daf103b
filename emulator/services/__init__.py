"""Local backends of the AWS services the template uses, each in the shape of its real API."""
