"""A real git remote for tests: a bare repository reachable as file://, fed through a clone."""

from __future__ import annotations

from pathlib import Path

import git


class GitRemote:
    """`commit` writes files in the clone and pushes to main; `tag` pushes an annotated tag."""

    def __init__(self, root: Path):
        self.bare = root / "remote.git"
        git.Repo.init(self.bare, bare=True, initial_branch="main")
        self.work = git.Repo.clone_from(self.bare.as_uri(), root / "work")
        with self.work.config_writer() as config:
            config.set_value("user", "name", "Test")
            config.set_value("user", "email", "test@example.com")

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or with None delete) files, commit, push to main; the new commit's sha."""
        for rel, text in files.items():
            path = Path(self.work.working_dir, rel)
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self.work.git.add("-A")
        self.work.git.commit("-m", message)
        self.work.git.push("origin", "HEAD:refs/heads/main")
        return self.work.head.commit.hexsha

    def tag(self, name: str) -> None:
        self.work.git.tag("-a", "-m", name, name)
        self.work.git.push("origin", f"refs/tags/{name}")

    def uri(self, rev: str, path: str) -> str:
        return f"git+{self.url}@{rev}#{path}"
