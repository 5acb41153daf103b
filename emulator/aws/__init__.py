"""What every layer shares about AWS itself: ARNs (one account, one region), clocks, JSON trees."""
