"""StorePlanningApp: the shortage analysis and the dispatch requests it sends."""
