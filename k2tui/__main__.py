from k2tui.cli import main

main()
