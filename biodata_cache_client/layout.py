"""The package version and the `bdc-v<MAJOR.MINOR>` folder it writes into."""

from importlib.metadata import version as _distribution_version

PIPELINE_VERSION = _distribution_version("biodata-cache")


def version_folder(package_version: str = PIPELINE_VERSION) -> str:
    """`0.1.3` -> `bdc-v0.1`: patch releases share a folder, a minor bump starts a new one."""
    parts = package_version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"package version {package_version!r} is not MAJOR.MINOR[.PATCH]")
    return f"bdc-v{int(parts[0])}.{int(parts[1])}"
