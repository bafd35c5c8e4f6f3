"""Running grids: what the user asked for (grids, suites), the plan of cells, what made
each cell (provenance), and executing it with the network calls and time counted by
arbench (runner, counting, cost, checks); certificates of exactness."""
