"""What keeping shelves stocked costs: the parameters every figure and every policy is priced with.

Defined once, here; settable through ``STOREOPS_COST_*`` environment variables (for example
``STOREOPS_COST_PER_KM=1.1``). The defaults are illustrative for a British grocery chain serving
stores from regional depots with rigid trucks, and are meant to be replaced by a fleet's own:

- ``truck_per_route`` (GBP 180): a truck and driver for one route out of the depot and back, the share
  of a shift and of the vehicle's standing costs (depreciation, insurance, tax) a route takes; a
  rigid truck with driver costs a few hundred pounds a day in published UK haulage cost surveys.
- ``per_km`` (GBP 0.90): running costs per kilometre (fuel at about 3 km a litre, tyres, maintenance).
- ``per_stop`` (GBP 15): the driver's and the store's receiving time for one delivery (about 20 minutes).
- ``holding_rate_per_year`` (25% of unit cost): capital, space, handling and shrink of stock held; the
  textbook range is 20-30% a year (for example Silver, Pyke & Thomas, *Inventory and Production
  Management in Supply Chains*, 2017).
- Waste is priced at the unit cost of what expires, lost sales at the margin they would have earned
  (price - unit cost, from the product master): the customers' goodwill is not priced.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

HOURS_A_YEAR = 24 * 365


class CostParameters(BaseSettings):
    """The cost of trucks, kilometres, stops and stock; lost margin and waste come from the product master."""

    model_config = SettingsConfigDict(env_prefix="STOREOPS_COST_", frozen=True, extra="ignore")

    truck_per_route: float = Field(default=180.0, ge=0, description="GBP per truck route (out of the depot and back).")
    per_km: float = Field(default=0.9, ge=0, description="GBP per kilometre driven, return legs included.")
    per_stop: float = Field(default=15.0, ge=0, description="GBP per delivery stop.")
    holding_rate_per_year: float = Field(
        default=0.25, ge=0, le=5, description="Share of unit cost a year to hold stock."
    )

    @property
    def holding_per_unit_hour(self) -> float:
        """The share of a unit's cost that holding it for an hour costs."""
        return self.holding_rate_per_year / HOURS_A_YEAR
