"""SLOs as code: the spec model, rule, test and dashboard generation, and the error-budget report."""
