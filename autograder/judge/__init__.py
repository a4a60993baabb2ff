"""The trusted side's verdict: the checks table and functions, judged on artifacts and the trainer's record."""
