"""Registers :class:`KubernetesContainerManager` and the ``clipper kubernetes`` command with clipper (entry point
group ``clipper``, name ``kubernetes``)."""

from __future__ import annotations

import argparse

from clipper_core import hookimpl
from clipper_core.interfaces import ContainerManager


@hookimpl
def clipper_register_container_managers() -> list[type[ContainerManager]]:
    from clipper_kubernetes.manager import KubernetesContainerManager

    return [KubernetesContainerManager]


@hookimpl
def clipper_add_commands(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    from clipper_kubernetes.cli import add_commands

    add_commands(subparsers, parents)
