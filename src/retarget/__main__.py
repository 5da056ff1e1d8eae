from retarget.cli import main

main()
