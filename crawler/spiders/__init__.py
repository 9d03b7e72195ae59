"""cfmon has one spider, configured per site from the monitor config."""
