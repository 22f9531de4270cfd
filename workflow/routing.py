"""Who owns a new ticket: its grid, else the reporter's known grid, else the node named, else county intake."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assignment:
    owner_code: str | None
    grid_code: str | None
    reason: str  # grid | reporter_grid | named_node | county_intake


def route(grid_code: str | None, node_code: str | None, reporter_grid: str | None, root_code: str | None) -> Assignment:
    if grid_code:
        return Assignment(grid_code, grid_code, "grid")
    if reporter_grid:
        return Assignment(reporter_grid, reporter_grid, "reporter_grid")
    if node_code:
        return Assignment(node_code, None, "named_node")
    return Assignment(root_code, None, "county_intake")
