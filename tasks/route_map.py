"""A map of truck routes per depot, as a PNG for a Prefect image artifact: what an operator looks at.

One panel per depot: the depot (a black square), each truck's route as a closed line depot -> stops ->
depot in a colour of its own, the stops as dots; the panel's title gives its trucks, stops, km and fill.
Longitude is scaled by cos(latitude) so that distances look right.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from prefect.artifacts import create_image_artifact

from storeops.directory import DEPOTS, StoreLocation


@dataclass(frozen=True)
class MapRoute:
    """One truck's route: its depot, its stops' (latitude, longitude) in order, its km and cages."""

    depot: str
    stops: tuple[tuple[float, float], ...]
    km: float
    cages: int


def routes_from_dispatches(dispatches: pd.DataFrame, stores: Mapping[str, StoreLocation]) -> list[MapRoute]:
    """The routes of ledger dispatch rows (``storeops.service_level.DISPATCH_COLUMNS``), one per load."""
    routes = []
    for _, load in dispatches.groupby("load_id", sort=True):
        stops = load.drop_duplicates("stop_number").sort_values("stop_number")
        points = tuple((stores[s].lat, stores[s].lon) for s in stops["store_id"] if s in stores)
        depot = str(stops["depot"].iloc[0])
        routes.append(MapRoute(depot, points, float(stops["route_km"].iloc[0]), int(stops["cages"].sum())))
    return routes


def route_map_png(routes: Sequence[MapRoute], capacity_cages: int, title: str) -> bytes:
    """The routes, one panel per depot that has any (see the module)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    depots = sorted({r.depot for r in routes}) or ["(no trucks)"]
    columns = min(3, len(depots))
    rows = math.ceil(len(depots) / columns)
    figure = Figure(figsize=(4.2 * columns, 4.0 * rows + 0.6), dpi=100)  # no pyplot: not thread-safe
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    palette = [f"C{i}" for i in range(10)]
    for axis, depot in zip(axes, depots, strict=False):
        mine = [r for r in routes if r.depot == depot]
        home = DEPOTS.get(depot)
        scale = math.cos(math.radians(home[0])) if home else 1.0
        for n, route in enumerate(mine):
            points = [home, *route.stops, home] if home else list(route.stops)
            xs, ys = [p[1] * scale for p in points], [p[0] for p in points]
            axis.plot(xs, ys, color=palette[n % len(palette)], linewidth=1.0, alpha=0.8)
            axis.scatter(xs[1:-1], ys[1:-1], s=9, color=palette[n % len(palette)], zorder=3)
        if home:
            axis.scatter([home[1] * scale], [home[0]], marker="s", s=60, color="black", zorder=4)
        stops = sum(len(r.stops) for r in mine)
        km = sum(r.km for r in mine)
        fill = sum(r.cages for r in mine) / (len(mine) * capacity_cages) if mine else 0.0
        axis.set_title(f"{depot}: {len(mine)} trucks, {stops} stops, {km:,.0f} km, fill {fill:.0%}", fontsize=9)
        axis.set_aspect("equal", adjustable="datalim")
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[len(depots) :]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def publish_route_map(key: str, routes: Sequence[MapRoute], capacity_cages: int, title: str) -> None:
    """The map as an image artifact (a data URL: the local server and Prefect Cloud both show it)."""
    png = base64.b64encode(route_map_png(routes, capacity_cages, title)).decode()
    create_image_artifact(image_url=f"data:image/png;base64,{png}", key=key, description=title)
