"""Looking inside networks and runs: anatomy (summary), activation pictures, run comparison."""
