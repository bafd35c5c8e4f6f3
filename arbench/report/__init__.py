"""From records to what people read: paper tables with intervals and marks, the markdown
every run prints, the Reporter base of the report formats, and leaderboards."""
