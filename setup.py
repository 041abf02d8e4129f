"""Build hook: ship the repository's recipes/ inside the wheel.

Recipes live at the top of the repository (one YAML file per recipe, grouped by family), where
people browse them; ``pip install seqkit`` must still find them, so the wheel carries a copy as
``seqkit/_recipes/`` and :data:`seqkit.recipes.RECIPES_DIR` looks there first. Everything else
about the build is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RECIPES = Path(__file__).resolve().parent / "recipes"


class BuildWithRecipes(build_py):
    """build_py that also copies recipes/**/*.yaml into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "seqkit" / "_recipes"
        for recipe in RECIPES.rglob("*.yaml"):
            destination = target / recipe.relative_to(RECIPES)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(recipe, destination)


setup(cmdclass={"build_py": BuildWithRecipes})
