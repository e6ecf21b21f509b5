# Partial stubs for fedmsg 1.1 (untyped, no stubs on PyPI): only what deploybot and its
# tests use. fedmsg is optional at run time (signature validation) and a test dependency.
