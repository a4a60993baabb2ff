"""The kit's trainer: the fast path, the trainer process that trains what a child describes, the grader's desk."""
