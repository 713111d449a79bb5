"""Imported runs: predictions made on a device, by another framework or a vendor."""
