from minidropbox.cli.main import main

main()
