"""The running platform's parts, built once from Settings: database and artifact store."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.access import bootstrap
from shipyard.artifacts import ArtifactStore
from shipyard.settings import Settings
from shipyard.store.engine import Database


@dataclass
class Platform:
    settings: Settings
    db: Database
    artifacts: ArtifactStore

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Platform:
        """Connect to the stores and bring the schema up to date."""
        home = settings.resolved_home()
        home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url())
        if migrate:
            db.migrate()
        return cls(settings=settings, db=db, artifacts=ArtifactStore(settings.resolved_artifacts_url()))

    def ensure_admin(self) -> bool:
        """On an empty store, create the platform admin; True if this call created it."""
        with self.db.session(write=True) as session:
            return bootstrap.ensure_platform_admin(session, self.settings.admin_token_path)

    def close(self) -> None:
        self.db.dispose()
