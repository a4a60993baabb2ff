"""What grading hands to people: text, JSON/CSV/Gradescope files, feedback pages, the class overview,
the gradebook, plots."""
