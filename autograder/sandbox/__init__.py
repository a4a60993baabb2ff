"""Running a submission's code confined: the launcher, the child and its probes, the artifacts it hands back.

The grader's half: ``launch`` (run the child, wait for it, stop a batch's), ``confine`` (one
mechanism for every confined command), ``method`` (which confinement this machine allows),
``view`` (what a sandbox sees of the files), ``slots`` (a user and cgroups of its own),
``scratch`` (its folders) and ``reaper`` (its first process, which measures its peak memory).
What the child may see of the kit: ``child`` (the launcher and the child), ``probe``,
``fit_client``, ``frames``, and ``artifacts``, the format it hands back, which the grader reads
through ``bounded_files`` and ``model_archive``.
"""
