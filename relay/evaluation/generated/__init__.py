"""Compiled items written out as Python source and compiled with `compile()`: each flag and each
simple segment as one function (`codegen`), and a warm plan's flags, many at a time, as one
function (`fusion`). Both repeat the closures' semantics exactly (relay.evaluation.clauses and
relay.evaluation.state); the conformance and differential suites run through this code.
"""
