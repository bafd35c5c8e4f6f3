"""What runs leave: the typed record of a cell, the store that keeps it, the statistics
behind every interval and verdict, the regression gate, speed-ups and agreement."""
