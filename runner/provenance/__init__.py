"""What ran where, on what: recorded once per run; metrics, report and RO-Crate read it."""
