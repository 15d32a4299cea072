"""StoreTruckApp: validate dispatch requests, claim them exactly once, load trucks, record loads."""
