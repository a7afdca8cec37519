"""The adopting project's own app (copied into the new project as ``orders``): what the README's
ViewSet snippet imports."""
