"""Publishing to the systems around a repository: GitHub pull requests and the bot, Jenkins jobs,
retrain hooks."""
