"""Energy and emissions footprint of the fleet: distance, energy, CO₂e, avoided patient trips.

Pure functions over typed values; the factor sets are data files under ``factors/``.
"""
