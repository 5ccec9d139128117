"""swebox as the environment of training frameworks: one module per framework, each a thin
translation of the framework's interface onto swebox (SweEnv, sandboxes, the grader).

Each module imports its framework lazily (inside the functions and classes that need it, or
at the top of a module only that framework imports), so swebox installs without any of them:
`pip install 'swebox[skyrl]'`, `'swebox[mini]'`, `'swebox[verl]'` pull the framework.
"""
