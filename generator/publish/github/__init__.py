"""GitHub: sync pull requests for one repository or a fleet, the PR report, the webhook bot, the
retrain hook."""
