from training.reexport import main

main()
