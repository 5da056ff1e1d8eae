"""HTTP: thin FastAPI routers, one module per concept. Parse, call one function, render."""
