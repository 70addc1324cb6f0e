"""The docker backend: the stack's services as containers of a Compose project, through the Docker API."""
