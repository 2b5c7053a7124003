"""PyGithub and GitHub's APIs: the client (REST, retries, pacing), git data writes, the GraphQL
snapshot."""
