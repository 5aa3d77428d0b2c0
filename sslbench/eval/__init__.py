"""Evaluation: instance metrics (AJI, AJI+, PQ, Dice, F1) and post-processing."""
