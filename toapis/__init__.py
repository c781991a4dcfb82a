"""An async client for the ToAPIs image API. Imports nothing from Discord or the rest of Imagine."""
