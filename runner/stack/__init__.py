"""The stack's life around a run: `pulumi up` before it and `pulumi destroy` after it.

`operation` runs one Pulumi operation as the CLI and shows its progress per resource;
`lifecycle` brings the stack up, runs the workflow and tears the stack down whatever happened.
"""
