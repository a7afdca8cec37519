"""DRF placeholder replaced below."""
