"""HTTP API (FastAPI): routers under /v1, schemas, authentication and roles."""
