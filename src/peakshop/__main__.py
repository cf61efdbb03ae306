from peakshop.cli import main

main()
