"""`python -m loadtests.propagation …` is `relay loadtest propagation …` (see docs/loadtesting.md)."""

from relay.cli import main

if __name__ == "__main__":
    main(["loadtest", "propagation", *__import__("sys").argv[1:]])
