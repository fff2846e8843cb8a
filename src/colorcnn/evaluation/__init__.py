"""Evaluation: the course's validation loss and accuracy, and checkpoint evaluation."""
