"""Building the example image once per test run and caching it by recipe hash.

The cache key covers the recipe and the source of the modules that shape a
built image, so a change to either builds afresh. The cache folder is
``$SLIPWAY_TEST_IMAGE_CACHE`` (default ``<repo>/.cache/test-images``); CI
starts without one and builds fresh. Tests must never modify the cached image:
copy it (or put an overlay on it) first.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_RECIPE = REPO / "examples" / "recipes" / "debian-12-minimal.yaml"
_SHAPING_MODULES = (
    "build.py",
    "rootfs.py",
    "disk.py",
    "distribution.py",
    "convert.py",
    "first_boot.py",
    "cloud_init_preload.py",
)
_TOOLS = ("mmdebstrap", "qemu-img", "sfdisk", "mke2fs", "grub-mkimage", "dpkg-query")


def cache_root() -> Path:
    return Path(os.environ.get("SLIPWAY_TEST_IMAGE_CACHE") or REPO / ".cache" / "test-images")


def build_unavailable_reason() -> str | None:
    """Why an image cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "building an image needs root (mmdebstrap --mode=root)"
    for tool in _TOOLS:
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return f"{tool} is not installed"
    if not Path("/usr/lib/grub/i386-pc/boot.img").is_file():
        return "grub-pc-bin is not installed (/usr/lib/grub/i386-pc)"
    return None


def cache_key(recipe_path: Path) -> str:
    """Hash of the recipe and of the image-shaping source code."""
    from slipway.imagekit import recipe as recipe_module
    from slipway.imagekit.recipe import load_recipe

    digest = hashlib.sha256(load_recipe(recipe_path).digest().encode())
    package = Path(recipe_module.__file__).parent
    for name in _SHAPING_MODULES:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:16]


def cached_build(recipe_path: Path = EXAMPLE_RECIPE, cache: Path | None = None) -> Path:
    """The qcow2 built from ``recipe_path``, building it only when not cached.

    Safe to call from several test processes at once: one builds, the others wait.
    """
    import subprocess
    import sys

    from slipway.imagekit.recipe import load_recipe

    cache = cache or cache_root()
    recipe = load_recipe(recipe_path)
    folder = cache / f"{recipe.name}-{cache_key(recipe_path)}"
    image = folder / f"{recipe.name}.qcow2"
    if image.is_file():
        return image
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image.is_file():
            # Through the command line, as a user would; packages cached beside the images.
            env = {**os.environ, "SLIPWAY_DATA_DIR": str(cache / "data")}
            cli = "from slipway.entrypoints.cli.app import main; main()"
            argv = [
                sys.executable,
                "-c",
                cli,
                "image",
                "build",
                str(recipe_path),
                "--output-dir",
                str(folder),
                "--format",
                "qcow2",
                "--output",
                "json",
            ]
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"image build failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
                )
    return image
