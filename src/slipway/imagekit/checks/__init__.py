"""The checks of ``slipway image check``, one module per area of the guidelines."""
