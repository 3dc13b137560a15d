"""Bayesian hierarchical models of grouped data: the library behind the workflow's step scripts."""
