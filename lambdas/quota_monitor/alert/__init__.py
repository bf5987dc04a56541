"""Step 4, alert: levels from tags, the crossing rules, and the state that makes each alert go once."""
