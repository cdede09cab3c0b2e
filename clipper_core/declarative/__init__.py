"""Declarative configuration: a clipper file (YAML) says which applications, model versions and links a clipper
runs; ``clipper apply`` makes it so, ``clipper diff`` shows what that would change, ``clipper export`` writes the
running state as such a file and ``clipper schema`` prints the file's JSON Schema (docs/declarative.md).

``load`` reads and checks a file (``spec.Desired``), ``running`` reads a clipper's state (``spec.Running``),
``plan`` compares the two into ordered actions, ``apply`` carries them out, ``export`` writes a file back.
"""
