# Present so that pytest puts the repository root on sys.path and the tests
# can import ``pagekit`` from a source checkout without installing it.
