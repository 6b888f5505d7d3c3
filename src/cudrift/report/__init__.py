"""Report rendering. JSON lives on :class:`cudrift.DriftReport` itself; HTML comes here."""
