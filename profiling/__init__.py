"""Offline measurement of the QoS levels each analytic offers; the only code that imports stages."""
