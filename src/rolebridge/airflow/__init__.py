"""Airflow integration (``pip install rolebridge[airflow]``): ``ContainerOperator``.

Imported lazily so ``rolebridge`` itself never needs Airflow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ContainerOperator"]


def __getattr__(name: str) -> Any:
    if name == "ContainerOperator":
        from rolebridge.airflow.operator import ContainerOperator

        return ContainerOperator
    raise AttributeError(name)
