"""Build the planning Lambda's deployment package from the repository.

The package holds the pure ``storeops`` package, the ``sql/`` folder, and what the runtime
does not provide: the AWS SDK for pandas layer brings awswrangler, pandas, numpy, pyarrow
and boto3, but not pydantic. Those are installed as manylinux wheels for the Python that
will run the function (3.12 on AWS; on the emulator, the emulator's own interpreter, since
its Lambda runs every runtime with it). Zips are byte-for-byte reproducible, so an
unchanged repository gives the same key and redeploying changes nothing.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from storeops.exceptions import StackError
from storeops.settings import project_root

# What the AWS SDK for pandas layer lacks; keep in step with storeops' imports.
BUNDLED_REQUIREMENTS = ("pydantic>=2.7,<3", "pydantic-settings>=2.3")
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
# Lambda's limits: 50 MB zipped for a direct upload, 250 MB unzipped with layers (the
# pandas layer takes most of it).
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 60 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaPlatform:
    """The interpreter and platform the package is built for."""

    python_version: str
    platform_tag: str

    @classmethod
    def aws(cls) -> LambdaPlatform:
        return cls(LAMBDA_PYTHON, LAMBDA_PLATFORM)

    @classmethod
    def this_interpreter(cls) -> LambdaPlatform:
        """The emulator runs functions with the interpreter that started it: this one."""
        return cls(f"{sys.version_info.major}.{sys.version_info.minor}", f"manylinux2014_{platform.machine()}")


@dataclass(frozen=True)
class LambdaPackage:
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int

    @property
    def s3_key(self) -> str:
        return f"lambda/planning-{self.sha256[:20]}.zip"


def _source_files(root: Path) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for folder, pattern in (("storeops", "*.py"), ("sql", "*.sql")):
        for path in sorted((root / folder).rglob(pattern)):
            if "__pycache__" not in path.parts:
                files.append((path, path.relative_to(root).as_posix()))
    return files


def _vendor(build_dir: Path, target: LambdaPlatform) -> Path:
    """Install the bundled requirements for ``target`` once; cached by their description."""
    key = hashlib.sha256(repr((BUNDLED_REQUIREMENTS, target)).encode()).hexdigest()[:16]
    vendor = build_dir / f"vendor-{key}"
    if (vendor / ".complete").exists():
        return vendor
    shutil.rmtree(vendor, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(vendor),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--platform",
        target.platform_tag,
        "--no-compile",
        *BUNDLED_REQUIREMENTS,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise StackError(
            f"cannot build the Lambda package's dependencies: {last}",
            hint="check access to the package index (pip install must work)",
        )
    (vendor / ".complete").touch()
    return vendor


def _write_zip(path: Path, entries: list[tuple[Path, str]]) -> int:
    """A reproducible zip of ``entries`` (fixed times and modes); the bytes before compression."""
    unzipped = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for source, name in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = source.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    return unzipped


def build_package(build_dir: Path, target: LambdaPlatform, root: Path | None = None) -> LambdaPackage:
    """Build (or reuse) the reproducible zip of the planning Lambda for ``target``."""
    root = root or project_root()
    build_dir.mkdir(parents=True, exist_ok=True)
    vendor = _vendor(build_dir, target)
    entries = [
        (p, p.relative_to(vendor).as_posix())
        for p in sorted(vendor.rglob("*"))
        if p.is_file() and p.name != ".complete" and "__pycache__" not in p.parts
    ]
    entries += _source_files(root)
    # A staging file of its own: several processes may build at once (each renames its own file).
    with tempfile.NamedTemporaryFile(dir=build_dir, prefix="planning-", suffix=".zip.tmp", delete=False) as handle:
        staging = Path(handle.name)
    try:
        unzipped = _write_zip(staging, entries)
        digest = hashlib.sha256(staging.read_bytes()).hexdigest()
        final = build_dir / f"planning-{digest[:20]}.zip"
        staging.replace(final)  # atomic; the same name holds the same bytes whoever wins
    finally:
        staging.unlink(missing_ok=True)
    package = LambdaPackage(final, digest, final.stat().st_size, unzipped)
    if package.zipped_bytes > MAX_ZIPPED_BYTES or package.unzipped_bytes > MAX_UNZIPPED_BYTES:
        raise StackError(
            f"the Lambda package is too large ({package.zipped_bytes} B zipped, {package.unzipped_bytes} B unzipped)",
            hint="bundle less: the AWS SDK for pandas layer already provides pandas and awswrangler",
        )
    return package
