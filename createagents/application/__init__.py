"""Use cases (the agent loop, tool execution, replies) and the ports they need. Imports the domain only."""
