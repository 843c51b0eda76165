"""One module per suite: each has HELP, add_arguments(parser) and run(args)."""
