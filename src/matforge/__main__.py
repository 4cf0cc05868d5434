from matforge.cli import main

main()
