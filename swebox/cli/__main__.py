from swebox.cli import main

main()
