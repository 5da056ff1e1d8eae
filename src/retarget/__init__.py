"""retarget: a low-latency retargeting ad server."""
