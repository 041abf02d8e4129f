"""Recipes: validation messages, --set overrides, YAML quirks, save/load round trip, discovery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seqkit.errors import UserError
from seqkit.recipes import (
    RECIPES_DIR,
    DataSection,
    Recipe,
    SampleSection,
    TokenizerSection,
    apply_overrides,
    find_recipe,
    list_recipes,
    load_recipe,
    parse_section,
    recipe_to_dict,
    save_recipe,
)
from seqkit.trainer.config import TrainerConfig

MINIMAL = "task: gpt\n"


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@dataclass
class Example:
    """Every annotation parse_section supports, written as strings (future annotations)."""

    count: int = 1
    rate: float = 0.5
    flag: bool = False
    name: str = "x"
    limit: int | None = None
    tags: list[str] = field(default_factory=list)
    pair: tuple[float, float] = (0.9, 0.999)
    where: Path | None = None


# ---------------------------------------------------------------------------- parse_section


def test_parse_section_fills_defaults_and_converts():
    parsed = parse_section(
        Example,
        {"count": 3, "rate": 1, "flag": True, "tags": ["a"], "pair": [0.5, 1], "where": "d"},
        "example",
    )
    assert parsed == Example(
        count=3, rate=1.0, flag=True, tags=["a"], pair=(0.5, 1.0), where=Path("d")
    )
    assert isinstance(parsed.rate, float) and isinstance(parsed.pair, tuple)
    assert parse_section(Example, None, "example") == Example()


def test_unknown_key_lists_the_valid_ones_sorted():
    with pytest.raises(UserError) as error:
        parse_section(TrainerConfig, {"lrr": 1}, "trainer")
    message = str(error.value)
    assert message.startswith("unknown key 'trainer.lrr'; valid keys in 'trainer': batch_size, ")
    assert "lr, " in message and "max_steps" in message


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("count", "abc", "example.count must be an integer, got 'abc'"),
        ("count", True, "example.count must be an integer, got true"),
        ("count", 2.5, "example.count must be an integer, got 2.5"),
        ("rate", "fast", "example.rate must be a number, got 'fast'"),
        ("rate", False, "example.rate must be a number, got false"),
        ("flag", "yes please", "example.flag must be true or false, got 'yes please'"),
        ("limit", "many", "example.limit must be an integer or null, got 'many'"),
        ("tags", {"a": 1}, "example.tags must be a list of strings, got a mapping"),
        ("tags", ["ok", [1]], "example.tags[1] must be a string, got [1]"),
        ("pair", [0.9], "example.pair must be a list of 2 numbers, got [0.9]"),
        ("pair", [0.9, "x"], "example.pair[1] must be a number, got 'x'"),
        ("name", None, "example.name must be a string, got null"),
    ],
)
def test_wrong_types_are_one_line_errors(key, value, message):
    with pytest.raises(UserError) as error:
        parse_section(Example, {key: value}, "example")
    assert str(error.value) == message


def test_lenient_conversions():
    parsed = parse_section(Example, {"count": 1e3, "name": 1984, "tags": "solo"}, "example")
    assert parsed.count == 1000 and isinstance(parsed.count, int)
    assert parsed.name == "1984"
    assert parsed.tags == ["solo"]


def test_section_must_be_a_mapping():
    with pytest.raises(UserError, match="'trainer' must be a mapping"):
        parse_section(TrainerConfig, [1, 2], "trainer")


def test_missing_required_key():
    @dataclass
    class Required:
        needed: int

    with pytest.raises(UserError, match=r"missing key 'x\.needed'"):
        parse_section(Required, {}, "x")


@pytest.mark.parametrize(
    ("cls", "mapping", "message"),
    [
        (TokenizerSection, {"kind": "wordpiece"}, "tokenizer.kind must be one of char, bpe"),
        (DataSection, {"val_fraction": 1.0}, "data.val_fraction"),
        (DataSection, {"stride": 0}, "data.stride"),
        (SampleSection, {"top_p": 0}, "sample.top_p"),
        (SampleSection, {"top_k": 0}, "sample.top_k"),
    ],
)
def test_section_values_are_range_checked(cls, mapping, message):
    with pytest.raises(UserError, match=message):
        parse_section(cls, mapping, cls.__name__)


# ---------------------------------------------------------------------------- overrides


def test_override_values_are_yaml():
    raw = apply_overrides(
        {"trainer": {"lr": 1.0}},
        [
            "trainer.lr=3e-4",
            "trainer.max_steps=10",
            "trainer.progress_bar=false",
            "trainer.max_grad_norm=null",
            "trainer.betas=[0.9, 0.95]",
            "sample.prompt=ROMEO:",
            'data.path="with spaces .txt"',
            "a.b.c=deep",
            "sample.temperature=1E3",
        ],
    )
    trainer = raw["trainer"]
    assert trainer["lr"] == 3e-4 and isinstance(trainer["lr"], float)
    assert trainer["max_steps"] == 10
    assert trainer["progress_bar"] is False
    assert trainer["max_grad_norm"] is None
    assert trainer["betas"] == [0.9, 0.95]
    assert raw["sample"] == {"prompt": "ROMEO:", "temperature": 1000.0}
    assert raw["data"]["path"] == "with spaces .txt"
    assert raw["a"] == {"b": {"c": "deep"}}


def test_overrides_do_not_mutate_their_input():
    raw = {"trainer": {"lr": 1.0}}
    apply_overrides(raw, ["trainer.lr=2"])
    assert raw == {"trainer": {"lr": 1.0}}


def test_empty_override_value_is_the_empty_string():
    assert apply_overrides({}, ["sample.prompt="]) == {"sample": {"prompt": ""}}


@pytest.mark.parametrize("override", ["trainer.lr", "=3", "trainer..lr=3", ".lr=1", "trainer.=1"])
def test_malformed_override(override):
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        apply_overrides({}, [override])


def test_override_below_a_value_is_an_error():
    with pytest.raises(UserError, match=r"'trainer\.lr' is a value"):
        apply_overrides({"trainer": {"lr": 1.0}}, ["trainer.lr.x=1"])


def test_override_typo_reads_like_a_file_typo(tmp_path):
    from_override = tmp_path / "a.yaml"
    from_override.write_text(MINIMAL)
    from_file = write(tmp_path, MINIMAL + "trainer:\n  lrr: 1\n", "b.yaml")
    with pytest.raises(UserError) as by_override:
        load_recipe(from_override, ["trainer.lrr=1"])
    with pytest.raises(UserError) as by_file:
        load_recipe(from_file)
    assert str(by_override.value) == str(by_file.value)
    with pytest.raises(UserError, match="unknown section 'trainr'; valid sections: description"):
        load_recipe(from_override, ["trainr.lr=1"])


# ---------------------------------------------------------------------------- load_recipe


def test_scientific_notation_without_a_dot_is_a_float_in_files(tmp_path):
    # (a signed mantissa and exponent: weight_decay, since a negative min_lr is refused now)
    path = write(tmp_path, MINIMAL + "trainer:\n  lr: 3e-4\n  eps: 1E-8\n  weight_decay: +2.5e+1\n")
    trainer = load_recipe(path).trainer
    assert (trainer.lr, trainer.eps, trainer.weight_decay) == (3e-4, 1e-8, 25.0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("no", "no"),  # YAML 1.1 would say False
        ("off", "off"),
        ("1:30", "1:30"),  # YAML 1.1 would say 90
        ("010", "010"),  # YAML 1.1 would say 8
        ("2024-01-01", "2024-01-01"),  # YAML 1.1 would say a date
        ("true", True),
        ("null", None),
        ("1_000", 1000),
        ("0x1F", 31),
        (".5", 0.5),
        ("1e3", 1000.0),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text, value):
    assert apply_overrides({}, [f"a.b={text}"])["a"]["b"] == value


def test_mixed_precision_no_from_file_and_command_line(tmp_path):
    path = write(tmp_path, MINIMAL + "trainer:\n  mixed_precision: no\n")
    assert load_recipe(path).trainer.mixed_precision == "no"
    path = write(tmp_path, MINIMAL, "other.yaml")
    assert load_recipe(path, ["trainer.mixed_precision=no"]).trainer.mixed_precision == "no"
    with pytest.raises(UserError, match="progress_bar must be true or false, got 'yes'"):
        load_recipe(path, ["trainer.progress_bar=yes"])


def test_merge_keys_work_and_later_keys_win(tmp_path):
    text = "task: gpt\nmodel:\n  <<: {n_layer: 2, n_head: 2}\n  n_head: 4\n"
    assert load_recipe(write(tmp_path, text)).model == {"n_layer": 2, "n_head": 4}


def test_minimal_recipe_takes_every_default(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert recipe == Recipe(task="gpt")
    assert recipe.source == tmp_path / "recipe.yaml"
    assert recipe.model == {} and recipe.trainer == TrainerConfig()


def test_empty_sections_are_allowed(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL + "model:\ntrainer:\nsample:\n"))
    assert recipe == Recipe(task="gpt")


def test_model_section_is_kept_as_a_mapping(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL + "model:\n  n_layer: 2\n"), ["model.n_head=4"])
    assert recipe.model == {"n_layer": 2, "n_head": 4}


def test_missing_recipe_file(tmp_path):
    with pytest.raises(UserError, match=r"nope\.yaml does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "task: gpt\ntrainer:\n  lr: [1, 2\n  seed: 3\n")
    with pytest.raises(UserError) as error:
        load_recipe(path)
    message = str(error.value)
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message and "\n" not in message
    line = int(message[len(str(path)) + 1 :].split(":")[0])
    assert 3 <= line <= 5


def test_duplicate_keys_are_an_error(tmp_path):
    path = write(tmp_path, "task: gpt\ntrainer:\n  lr: 1.0e-3\n  lr: 1.0e-4\n")
    with pytest.raises(UserError, match=rf"{path.name}:4:.*duplicate key 'lr'"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("- task: gpt\n", "must be a mapping of sections"),
        ("model:\n  n_layer: 2\n", "has no 'task'"),
        ("task: [gpt]\n", "task must be"),
        ("task: gpt\nmodel: 3\n", "'model' must be a mapping"),
    ],
)
def test_malformed_recipes(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_recipe(write(tmp_path, text))


# ---------------------------------------------------------------------------- save / round trip


def test_save_and_load_round_trip(tmp_path):
    recipe = load_recipe(
        find_recipe("gpt/shakespeare-char"),
        [
            "trainer.lr=3e-4",
            "trainer.betas=[0.8, 0.95]",
            "sample.prompt=1e5",  # a string that looks like a float must come back a string
            "sample.top_p=0.9",
            "data.path=corpus.txt",
            "trainer.mixed_precision=no",  # written quoted: YAML 1.1 readers take it as false
            'sample.prompt="\\n\\tTo be: "',
        ],
    )
    saved = tmp_path / "run" / "recipe.yaml"
    save_recipe(recipe, saved)
    loaded = load_recipe(saved)
    assert loaded == recipe
    assert recipe_to_dict(loaded) == recipe_to_dict(recipe)
    assert loaded.sample.prompt == "\n\tTo be: "
    assert loaded.trainer.betas == (0.8, 0.95)
    assert "mixed_precision: 'no'" in saved.read_text()


def test_recipe_to_dict_is_plain_yaml_data():
    data = recipe_to_dict(Recipe(task="gpt", model={"sizes": (1, 2)}))
    assert list(data) == ["description", "task", "model", "tokenizer", "data", "trainer", "sample"]
    assert data["trainer"]["betas"] == [0.9, 0.999]
    assert data["model"] == {"sizes": [1, 2]}
    assert "source" not in data


def test_round_trip_of_a_string_that_looks_like_scientific_notation(tmp_path):
    recipe = Recipe(task="gpt", sample=SampleSection(prompt="3e-4"))
    save_recipe(recipe, tmp_path / "r.yaml")
    assert load_recipe(tmp_path / "r.yaml").sample.prompt == "3e-4"


# ---------------------------------------------------------------------------- discovery


def test_shipped_recipes_load_and_are_listed():
    # Data modules and families bring their own data sections (BERT's masking settings), and
    # shorthand tasks are written out, as the CLI reads recipes.
    from seqkit.parts import resolve

    rows = list_recipes(RECIPES_DIR, load=resolve.load_recipe)
    names = [name for name, _ in rows]
    assert "gpt/shakespeare-char.yaml" in names
    assert names == sorted(names)
    for name, description in rows:
        assert not description.startswith("(invalid"), (name, description)
        assert resolve.load_recipe(RECIPES_DIR / name).task


def test_listing_without_validation_gives_the_same_rows():
    # `seqkit recipes` lists without importing the parts; it must show what validation would.
    from seqkit.parts.resolve import load_recipe

    assert list_recipes(RECIPES_DIR, validate=False) == list_recipes(RECIPES_DIR, load=load_recipe)


def test_list_recipes_reports_broken_files(tmp_path):
    write(tmp_path, "description: fine\ntask: gpt\n", "b/good.yaml")
    write(tmp_path, "task: [unclosed\n", "a/broken.yaml")
    write(tmp_path, "not a recipe", "notes.txt")
    rows = list_recipes(tmp_path)
    assert [name for name, _ in rows] == ["a/broken.yaml", "b/good.yaml"]
    assert rows[0][1].startswith("(invalid recipe:")
    assert rows[1][1] == "fine"
    assert list_recipes(tmp_path, validate=False) == rows
    assert list_recipes(tmp_path / "missing") == []


def test_find_recipe_by_name_or_path(tmp_path):
    expected = RECIPES_DIR / "gpt" / "shakespeare-char.yaml"
    assert find_recipe("gpt/shakespeare-char", RECIPES_DIR) == expected
    assert find_recipe("gpt/shakespeare-char.yaml", RECIPES_DIR) == expected
    assert find_recipe(str(expected), RECIPES_DIR) == expected
    own = write(tmp_path, MINIMAL, "mine.yaml")
    assert find_recipe(own, RECIPES_DIR) == own


def test_find_recipe_not_found(tmp_path):
    with pytest.raises(UserError) as error:
        find_recipe("no/such-recipe", RECIPES_DIR)
    assert "no/such-recipe" in str(error.value)
    assert "seqkit recipes" in str(error.value)
    with pytest.raises(UserError, match="is a directory"):
        find_recipe(tmp_path, RECIPES_DIR)


def test_recipes_dir_is_the_repo_root_folder():
    assert Path(__file__).resolve().parent.parent / "recipes" == RECIPES_DIR
