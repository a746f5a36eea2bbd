"""What is optimised: pure losses, their linear algebra, targets, masks and the terms
the objective sums."""
