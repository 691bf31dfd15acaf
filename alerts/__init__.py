"""Stock-out risk, alert detection and the loyalty members each alert affects."""
