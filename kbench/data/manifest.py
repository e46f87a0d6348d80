"""The data manifest: what external data kbench knows, and fetching it with checksums.

Each ``data_manifest/*.toml`` file lists ``[[files]]`` entries with a ``name``
(the path under the data directory, which is also its path in a mirror), a
public ``url``, ``sha256``, ``size``, ``license`` and ``citation``. Nothing is
fetched at import time or in the ``smoke`` profile.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from kbench.errors import ChecksumError, DataError, UnknownNameError

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "data_manifest"
MIRROR_ENV = "KBENCH_DATA_MIRROR"
DATA_DIR_ENV = "KBENCH_DATA_DIR"


@dataclass(frozen=True)
class ManifestEntry:
    """One external file: where it lives publicly, and how to recognise it."""

    name: str
    url: str
    sha256: str
    size: int
    license: str
    citation: str
    description: str = ""
    installed_by: str = ""   # a system package kbench reads once installed (not in the data mirror)


def read_manifest(directory: str | Path = MANIFEST_DIR) -> dict[str, ManifestEntry]:
    """Return every manifest entry by name, from all ``*.toml`` files in ``directory``."""
    entries: dict[str, ManifestEntry] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        with path.open("rb") as handle:
            try:
                document = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise DataError(f"{path}: not valid TOML ({error})") from error
        for index, raw in enumerate(document.get("files", [])):
            try:
                entry = ManifestEntry(**raw)
            except TypeError as error:
                raise DataError(f"{path}: entry #{index} has wrong fields ({error})") from error
            if entry.name in entries:
                raise DataError(f"{path}: entry {entry.name!r} is declared twice")
            entries[entry.name] = entry
    return entries


def default_data_dir() -> Path:
    """Return where fetched data lives: ``$KBENCH_DATA_DIR`` or ``~/.cache/kbench/data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "kbench" / "data")


def select(name: str, manifest: dict[str, ManifestEntry] | None = None) -> list[ManifestEntry]:
    """Return the entries ``name`` means: one file's name, or a folder prefix such as ``kbert/kgs``."""
    manifest = read_manifest() if manifest is None else manifest
    if name in manifest:
        return [manifest[name]]
    prefix = name.rstrip("/") + "/"
    chosen = [entry for key, entry in manifest.items() if key.startswith(prefix)]
    if not chosen:
        groups = sorted({key.split("/")[0] for key in manifest})
        raise UnknownNameError(f"no data named {name!r} in the manifest; groups: {', '.join(groups)} "
                               "(`kbench data list` shows every file)")
    return chosen


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, data_dir: str | Path | None = None, mirror: str | Path | None = None,
          manifest: dict[str, ManifestEntry] | None = None, progress: bool = True) -> list[Path]:
    """Return the local paths of the files ``name`` means, copying or downloading the missing ones.

    A file already present with the right checksum is kept. Otherwise it is
    copied from ``mirror`` (or ``$KBENCH_DATA_MIRROR``) when that holds it, else
    downloaded from its url; either way it is written to a temporary file,
    checked, and renamed into place, so nothing half-written is ever left.
    """
    root = Path(data_dir) if data_dir else default_data_dir()
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    entries = select(name, manifest)
    paths = []
    for entry in tqdm(entries, desc=f"fetch {name}", disable=not progress or len(entries) < 2):
        target = root / entry.name
        if not (target.is_file() and target.stat().st_size == entry.size and sha256_of(target) == entry.sha256):
            _obtain(entry, target, Path(mirror) if mirror else None)
        paths.append(target)
    return paths


def _obtain(entry: ManifestEntry, target: Path, mirror: Path | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        source = mirror / entry.name if mirror else None
        if source is not None and source.is_file():
            shutil.copyfile(source, temporary_path)
            origin = str(source)
        else:
            _download(entry.url, temporary_path, entry.name, mirror)
            origin = entry.url
        actual = sha256_of(temporary_path)
        if actual != entry.sha256:
            raise ChecksumError(f"{entry.name} from {origin} has sha256 {actual}, but the manifest says "
                                f"{entry.sha256}: the source changed or is corrupt; nothing was written")
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


def _download(url: str, destination: Path, name: str, mirror: Path | None) -> None:
    where = f"mirror {mirror} has no {name}; " if mirror else ""
    try:
        with urllib.request.urlopen(url, timeout=30) as response, destination.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"could not download {name} from {url} ({error}); {where}to work offline, point "
                        f"{MIRROR_ENV} (or `kbench data fetch --mirror DIR`) at a directory holding {name}") from error


def local_path(name: str, data_dir: str | Path | None = None, fetch_missing: bool = True) -> Path:
    """Return the local path of one manifest file, fetching it first when ``fetch_missing``."""
    root = Path(data_dir) if data_dir else default_data_dir()
    path = root / name
    if path.is_file():
        return path
    if not fetch_missing:
        raise DataError(f"{path} is missing: run `kbench data fetch {name}`")
    return fetch(name, root, progress=False)[0]
