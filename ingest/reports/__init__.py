"""Reports built from the stored daily records: footprint, cold chain, the funder's year."""
