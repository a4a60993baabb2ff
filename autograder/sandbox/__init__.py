"""Running a submission's code confined: the launcher, the child and its probes, the artifacts it hands back."""
