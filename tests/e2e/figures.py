"""What the end-to-end suite measured in this run, printed at its end (README, "Figures")."""

FIGURES: dict[str, object] = {}
