"""The API service: ``create_app(settings)`` builds the FastAPI application."""
