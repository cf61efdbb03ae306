"""`python -m peakshop.rehearsal` runs `peakshop rehearse`."""

from peakshop.rehearsal.cli import main

main()
