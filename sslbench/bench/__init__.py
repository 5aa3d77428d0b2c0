"""Jobs, suites, results and leaderboards."""
