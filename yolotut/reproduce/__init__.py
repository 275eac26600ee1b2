"""Reproduction: the papermill runner, the results store, the published-claims checker and the report."""
