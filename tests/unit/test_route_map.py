"""The route map: routes read back from ledger rows, drawn one panel per depot."""

from __future__ import annotations

import pandas as pd

from storeops.directory import DEPOTS, StoreLocation
from tasks.route_map import MapRoute, route_map_png, routes_from_dispatches

STORES = {
    "S1": StoreLocation("S1", "north", DEPOTS["north"][0] + 0.1, DEPOTS["north"][1]),
    "S2": StoreLocation("S2", "north", DEPOTS["north"][0] + 0.2, DEPOTS["north"][1] + 0.1),
    "S3": StoreLocation("S3", "south", DEPOTS["south"][0] - 0.1, DEPOTS["south"][1]),
}


def test_routes_are_read_back_from_the_ledgers_dispatch_rows_in_stop_order() -> None:
    rows = pd.DataFrame(
        [
            # load, store, stop, depot, stop cages (repeated on each of its rows), route km
            ("l1", "S2", 2, "north", 3, 40.0),
            ("l1", "S1", 1, "north", 2, 40.0),
            ("l1", "S1", 1, "north", 2, 40.0),  # a second product at the same stop
            ("l2", "S3", 1, "south", 5, 25.5),
        ],
        columns=["load_id", "store_id", "stop_number", "depot", "cages", "route_km"],
    )
    routes = routes_from_dispatches(rows, STORES)
    assert routes == [
        MapRoute("north", ((STORES["S1"].lat, STORES["S1"].lon), (STORES["S2"].lat, STORES["S2"].lon)), 40.0, 5),
        MapRoute("south", ((STORES["S3"].lat, STORES["S3"].lon),), 25.5, 5),
    ]


def test_the_map_is_a_png_and_draws_nothing_without_trucks() -> None:
    routes = [MapRoute("north", ((53.6, -2.2),), 30.0, 10), MapRoute("east", ((52.7, 1.4), (52.8, 1.3)), 50.0, 40)]
    png = route_map_png(routes, 45, "two depots")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert route_map_png([], 45, "nothing yet").startswith(b"\x89PNG")
