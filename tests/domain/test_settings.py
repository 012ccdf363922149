import pytest

from createagents import ConfigurationError, ModelSettings


def test_valid_settings_are_kept() -> None:
    s = ModelSettings.from_mapping(
        {
            "temperature": 0.2,
            "top_p": 1,
            "max_tokens": 400,
            "top_k": 40,
            "stop": "END",
            "seed": 7,
            "think": "low",
        }
    )
    assert s == ModelSettings(temperature=0.2, top_p=1.0, max_tokens=400, top_k=40, stop=("END",), seed=7, think="low")
    assert ModelSettings.from_mapping(None) == ModelSettings()
    assert ModelSettings.from_mapping({"temperature": None}).temperature is None


def test_unknown_key_names_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigurationError) as e:
        ModelSettings.from_mapping({"temprature": 0.5})
    assert "'temprature'" in str(e.value)
    assert "temperature" in str(e.value) and "max_tokens" in str(e.value)


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("temperature", 2.5, "from 0 to 2"),
        ("temperature", -0.1, "from 0 to 2"),
        ("temperature", "hot", "from 0 to 2"),
        ("temperature", True, "from 0 to 2"),
        ("top_p", 1.5, "from 0 to 1"),
        ("max_tokens", 0, "greater than 0"),
        ("max_tokens", 1.5, "greater than 0"),
        ("top_k", -1, "greater than 0"),
        ("stop", [], "non-empty"),
        ("stop", [1], "non-empty"),
        ("seed", "x", "whole number"),
        ("think", "max", "'low', 'medium' or 'high'"),
        ("reasoning_effort", "max", "'minimal'"),
        ("reasoning_summary", "short", "'concise'"),
        ("verbosity", 1, "'medium'"),
        ("truncation", True, "'disabled'"),
        ("service_tier", "gold", "'flex'"),
        ("max_output_tokens", 0, "greater than 0"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_values(key: str, value: object, hint: str) -> None:
    with pytest.raises(ConfigurationError) as e:
        ModelSettings.from_mapping({key: value})
    assert repr(key) in str(e.value) and hint in str(e.value)


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="dict"):
        ModelSettings.from_mapping([("temperature", 1)])  # type: ignore[arg-type]


def test_max_output_tokens_is_max_tokens_and_two_different_limits_are_refused() -> None:
    assert ModelSettings.from_mapping({"max_output_tokens": 64}).max_tokens == 64
    assert ModelSettings.from_mapping({"max_tokens": 64, "max_output_tokens": 64}).max_tokens == 64
    assert ModelSettings().overridden({"max_output_tokens": 9}).max_tokens == 9
    with pytest.raises(ConfigurationError, match="disagree"):
        ModelSettings.from_mapping({"max_tokens": 64, "max_output_tokens": 65})
