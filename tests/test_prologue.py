"""jshost.prologue: SPEC §1.2 step by step and every row of §1.3, in both eras."""

from __future__ import annotations

import pytest

from jshost import errors
from jshost.errors import Era, ReplyError
from jshost.host.prologue import Prologue, check_api_version, parse_prologue

TF_PREFIX = "Failed to compile library: "
INVALID = errors.INVALID_PROLOGUE


def _error(code: str, era: Era) -> str:
    with pytest.raises(ReplyError) as info:
        parse_prologue(code, era)
    return info.value.text


# (code, the bare error text): both eras give it, tf with its prefix.
ERRORS_BOTH_ERAS: list[tuple[str, str]] = [
    # §1.2 steps 1-2: the first line must start with `#!`.
    ("", INVALID),
    ("js api_version=1.0 name=a", INVALID),
    (" #!js api_version=1.0 name=a", INVALID),
    ("\ufeff#!js api_version=1.0 name=a", INVALID),
    ("\n#!js api_version=1.0 name=a", INVALID),
    ("\r\n#!js api_version=1.0 name=a", INVALID),
    ("#", INVALID),
    # Step 5: pairs.
    ("#!js  api_version=1.0 name=a", INVALID),  # two spaces: an empty key
    ("#!js api_version=1.0  name=a", INVALID),
    ("#!js api_version=1.0 name=", INVALID),  # empty value
    ("#!js api_version=1.0 =x name=a", INVALID),  # empty key
    ("#!js api_version=1.0 name=a stray", INVALID),  # a piece left over
    ("#!js api_version=1.0 name=lib a=b=c", INVALID),  # a=b=c: a piece left over
    ("#!js api_version=1.0 name=lib=x", INVALID),
    ("#!js api_version", INVALID),
    ("#!js\tapi_version=1.0 name=a", INVALID),  # a tab is not a separator
    ("#!js api_version=1.0 name=a name= x", INVALID),  # invalid outranks duplicated
    # Duplicated keys (before the empty test), in the order met.
    ("#!js api_version=1.0 name=a name=b", errors.duplicated_prologue_properties(["name"])),
    ("#!js api_version=1.0 name=a name=", errors.duplicated_prologue_properties(["name"])),
    (
        "#!js name=a api_version=1.0 name=b api_version=1.1",
        "Duplicated prologue properties found: name, api_version.",
    ),
    (
        "#!js name=a name=b name=c api_version=1.0",
        "Duplicated prologue properties found: name, name.",
    ),
    ("#!js foo=1 foo=2", errors.duplicated_prologue_properties(["foo"])),
    # api_version missing (the rg docs' `#!js name=lib` is refused, as the code does).
    ("#!js name=lib", errors.API_VERSION_MISSING),
    ("#!js", errors.API_VERSION_MISSING),
    ("#!", errors.API_VERSION_MISSING),
    ("#!js name=lib foo=bar", errors.API_VERSION_MISSING),
    # api_version malformed: before `name` missing and unknown properties.
    ("#!js api_version=1 name=a", errors.api_version_malformed("1")),
    ("#!js api_version=1.x name=a", errors.api_version_malformed("1.x")),
    ("#!js api_version=x.0 name=a", errors.api_version_malformed("x.0")),
    ("#!js api_version=256.0 name=a", errors.api_version_malformed("256.0")),
    ("#!js api_version=1.256 name=a", errors.api_version_malformed("1.256")),
    ("#!js api_version=-1.0 name=a", errors.api_version_malformed("-1.0")),
    ("#!js api_version=++1.0 name=a", errors.api_version_malformed("++1.0")),
    ("#!js api_version=+.0 name=a", errors.api_version_malformed("+.0")),
    ("#!js api_version=1..0 name=a", errors.api_version_malformed("1..0")),
    ("#!js api_version=.1 name=a", errors.api_version_malformed(".1")),
    ("#!js api_version=1_0.0 name=a", errors.api_version_malformed("1_0.0")),
    ("#!js api_version=١.0 name=a", errors.api_version_malformed("١.0")),
    ("#!js api_version= 1.0 name=a", INVALID),
    ("#!js api_version=x", errors.api_version_malformed("x")),
    ("#!js api_version=x foo=1", errors.api_version_malformed("x")),
    # name missing: before unknown properties.
    ("#!js api_version=1.0", errors.LIBRARY_NAME_MISSING),
    ("#!js api_version=1.0 foo=1", errors.LIBRARY_NAME_MISSING),
    # Unknown properties, in the order met.
    (
        "#!js api_version=1.0 name=a foo=1 bar=2",
        errors.unknown_prologue_properties(["foo", "bar"]),
    ),
    ("#!js Name=a api_version=1.0 name=b", errors.unknown_prologue_properties(["Name"])),
    # name=a=b=c pairs up as (name, a), (b, c).
    ("#!js api_version=1.0 name=a=b=c", errors.unknown_prologue_properties(["b"])),
    # Engine: case-sensitive, checked after every parsing error.
    ("#!JS api_version=1.0 name=a", errors.unknown_backend("JS")),
    ("#!v8 api_version=1.0 name=a", errors.unknown_backend("v8")),
    ("#! api_version=1.0 name=a", errors.unknown_backend("")),
    ("#!py api_version=1.0 name=a foo=1", errors.unknown_prologue_properties(["foo"])),
    ("#!py api_version=1.0", errors.LIBRARY_NAME_MISSING),
]


@pytest.mark.parametrize(("code", "text"), ERRORS_BOTH_ERAS)
def test_rg_errors_have_no_prefix(code: str, text: str) -> None:
    assert _error(code, "rg") == text


@pytest.mark.parametrize(("code", "text"), ERRORS_BOTH_ERAS)
def test_tf_errors_are_prefixed(code: str, text: str) -> None:
    assert _error(code, "tf") == TF_PREFIX + text


# (code, era, api_version, its display form, name); the engine is always `js`.
ACCEPTED: list[tuple[str, Era, tuple[int, int], str, str]] = [
    ("#!js api_version=1.0 name=lib", "rg", (1, 0), "1.0", "lib"),
    ("#!js name=lib api_version=1.1", "tf", (1, 1), "1.1", "lib"),
    ("#!js api_version=01.0 name=lib", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version=001.000 name=lib", "tf", (1, 0), "1.0", "lib"),
    ("#!js api_version=1.0.7 name=lib", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version=1.1.x.y name=lib", "rg", (1, 1), "1.1", "lib"),
    ("#!js api_version=1.0. name=lib", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version=+1.+0 name=lib", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version=255.255 name=lib", "rg", (255, 255), "255.255", "lib"),
    # Well formed but unsupported: accepted here, refused by check_api_version.
    ("#!js api_version=1.2 name=lib", "tf", (1, 2), "1.2", "lib"),
    # Only the first line counts; one trailing CR is dropped.
    ("#!js api_version=1.0 name=lib\r\nredis.log('x');", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version=1.0 name=lib\n#!js garbage", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version=1.0 name=lib\r\r\n", "tf", (1, 0), "1.0", "lib"),  # tf trims the rest
    # tf trims whitespace at both ends (Unicode White_Space, as Rust's `trim`).
    ("#!js api_version=1.0 name=lib ", "tf", (1, 0), "1.0", "lib"),
    ("#!js api_version=1.0 name=lib \t\u3000", "tf", (1, 0), "1.0", "lib"),
    # A tab stays inside a piece (rg has no name rule).
    ("#!js api_version=1.0 name=a\tb", "rg", (1, 0), "1.0", "a\tb"),
    # rg keeps a second CR and any other odd character inside the name.
    ("#!js api_version=1.0 name=lib\r\r\n", "rg", (1, 0), "1.0", "lib\r"),
    ("#!js api_version=1.0 name=my-lib.v2", "rg", (1, 0), "1.0", "my-lib.v2"),
    # `=` separates as a space does, even right after the engine.
    ("#!js=api_version=1.0 name=lib", "rg", (1, 0), "1.0", "lib"),
    ("#!js api_version 1.0 name lib", "tf", (1, 0), "1.0", "lib"),
]


@pytest.mark.parametrize(("code", "era", "version", "display", "name"), ACCEPTED)
def test_accepted(code: str, era: Era, version: tuple[int, int], display: str, name: str) -> None:
    prologue = parse_prologue(code, era)
    assert prologue == Prologue(engine="js", api_version=version, name=name)
    assert prologue.api_version_display == display


def test_rg_refuses_a_trailing_space() -> None:
    # The space leaves an empty piece over.
    assert _error("#!js api_version=1.0 name=lib ", "rg") == INVALID


def test_rg_keeps_a_trailing_tab_in_the_name() -> None:
    assert parse_prologue("#!js api_version=1.0 name=lib\t", "rg").name == "lib\t"


def test_tf_does_not_trim_what_rust_does_not_call_whitespace() -> None:
    # U+001C is whitespace for Python's str.strip() but not for Rust's trim().
    code = "#!js api_version=1.0 name=lib\x1c"
    assert parse_prologue(code, "rg").name == "lib\x1c"
    assert _error(code, "tf") == TF_PREFIX + (
        "Unallowed library name 'lib\x1c', Unallowed char was given '\x1c'."
    )


@pytest.mark.parametrize(
    ("name", "bad"),
    [("my-lib", "-"), ("a\tb", "\t"), ("lib.v2", "."), ("libé", "é"), ("x١", "١")],
)
def test_tf_library_name_rule(name: str, bad: str) -> None:
    code = f"#!js api_version=1.0 name={name}"
    assert _error(code, "tf") == (
        f"{TF_PREFIX}Unallowed library name '{name}', Unallowed char was given '{bad}'."
    )
    assert parse_prologue(code, "rg").name == name


def test_tf_engine_is_checked_before_the_name() -> None:
    assert _error("#!py api_version=1.0 name=my-lib", "tf") == TF_PREFIX + "Unknown backend py"


def test_tf_name_rule_allows_letters_digits_underscore() -> None:
    assert parse_prologue("#!js api_version=1.0 name=Lib_09", "tf").name == "Lib_09"


def test_version_is_not_checked_for_support_while_parsing() -> None:
    prologue = parse_prologue("#!js api_version=9.9 name=lib", "rg")
    assert prologue.api_version == (9, 9)


@pytest.mark.parametrize("version", ["1.0", "1.1", "01.1", "1.0.5"])
@pytest.mark.parametrize("era", ["rg", "tf"])
def test_supported_versions_pass(version: str, era: Era) -> None:
    check_api_version(parse_prologue(f"#!js api_version={version} name=lib", era), era)


@pytest.mark.parametrize(
    ("version", "display"),
    [("1.2", "1.2"), ("0.9", "0.9"), ("2.0", "2.0"), ("01.02", "1.2"), ("0.0", "0.0")],
)
@pytest.mark.parametrize(
    ("era", "prefix"),
    [("rg", "Failed library compilation: "), ("tf", "Failed to compile library: ")],
)
def test_unsupported_version_is_a_compile_error(
    version: str, display: str, era: Era, prefix: str
) -> None:
    prologue = parse_prologue(f"#!js api_version={version} name=lib", era)
    with pytest.raises(ReplyError) as info:
        check_api_version(prologue, era)
    assert info.value.text == (
        f"{prefix}An unsupported API version was requested: {display}."
        " The supported versions are 1.0, 1.1."
    )
