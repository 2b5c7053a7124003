"""Delivering the model to where it runs: Kubernetes rollouts and their status."""
