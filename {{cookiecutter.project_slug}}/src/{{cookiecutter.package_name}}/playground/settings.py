"""The playground's setting."""

from __future__ import annotations

from ..core.settings import Settings


class PlaygroundSettings(Settings):
    # Serve /playground outside development too (it is always on in development).
    playground_enabled: bool = False

    @property
    def playground_served(self) -> bool:
        return self.app_env == "development" or self.playground_enabled
