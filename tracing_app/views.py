"""Error views placeholder replaced below."""
