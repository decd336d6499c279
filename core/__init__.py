"""Similar and near-duplicate chest X-rays: the library under the app and the CLI."""
