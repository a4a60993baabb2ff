"""Grading many submissions: one submission's steps, the local pool, the cluster, the results store, the order."""
