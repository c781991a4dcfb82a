"""The job pipeline from a validated request to delivered images. Imports nothing from Discord."""
