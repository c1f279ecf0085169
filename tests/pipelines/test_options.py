from __future__ import annotations

import json

import pytest

from shipyard.errors import InvalidInput, InvalidPipeline
from shipyard.pipelines import Resources, StepOptions

RESOURCE_KEYS = "cpu, gpu, memory, memory_mb"
ALL_OPTIONS = "cache, materializer, name, outputs, resources, retries, retry_backoff_s, timeout_s"
OUTPUTS = "step option 'outputs' for step 'train' expects a non-empty list of unique identifiers"


def test_defaults() -> None:
    options = StepOptions.parse()
    assert options == StepOptions()
    assert options.resources == Resources(cpu=1.0, memory_mb=0, gpu=0.0)
    assert (options.retries, options.retry_backoff_s, options.timeout_s, options.cache) == (0, 1.0, None, True)
    assert (options.outputs, options.materializer, options.name) == (("output",), None, None)


def test_parse_normalises_what_users_write() -> None:
    options = StepOptions.parse(
        "train",
        name="fit",
        resources={"cpu": 2, "memory": "2Gi", "gpu": 1},
        retries=3,
        retry_backoff_s=2,
        timeout_s=60,
        cache=False,
        outputs=["model", "metrics"],
        materializer="skops",
    )
    assert options.resources == Resources(cpu=2.0, memory_mb=2048, gpu=1.0)
    assert isinstance(options.resources.cpu, float)
    assert options.timeout_s == 60.0
    assert isinstance(options.timeout_s, float)
    assert options.outputs == ("model", "metrics")
    assert StepOptions.parse(outputs="model").outputs == ("model",)
    assert StepOptions.parse(resources=Resources(gpu=1)).resources.gpu == 1


@pytest.mark.parametrize(
    ("memory", "mb"),
    [("512Mi", 512), ("2Gi", 2048), ("1.5Gi", 1536), ("1G", 954), ("300M", 287), ("64Ki", 1), ("1Ti", 1048576)],
)
def test_memory_sizes_convert_to_mebibytes_rounding_up(memory: str, mb: int) -> None:
    assert Resources.parse({"memory": memory}).memory_mb == mb


def test_resources_parse_passes_none_and_instances_through() -> None:
    assert Resources.parse(None) == Resources()
    given = Resources(cpu=0.5)
    assert Resources.parse(given) is given
    assert Resources.parse({"memory_mb": 256}) == Resources(memory_mb=256)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"cpus": 2}, f"unknown resource 'cpus' for step 'train': expected one of {RESOURCE_KEYS}; did you mean 'cpu'?"),
        ({"cpu": -1}, "resource 'cpu' for step 'train' expects a number >= 0, got -1 (int)"),
        ({"gpu": True}, "resource 'gpu' for step 'train' expects a number >= 0, got True (bool)"),
        ({"cpu": float("nan")}, "resource 'cpu' for step 'train' expects a number >= 0, got nan (float)"),
        ({"memory_mb": -5}, "resource 'memory_mb' for step 'train' expects an integer >= 0, got -5 (int)"),
        ({"memory_mb": 1.5}, "resource 'memory_mb' for step 'train' expects an integer >= 0, got 1.5 (float)"),
        ({"memory": "12"}, "resource 'memory' for step 'train' expects a size such as '512Mi', '2Gi' or '1G', got '12' (str)"),
        ({"memory": 512}, "resource 'memory' for step 'train' expects a size such as '512Mi', '2Gi' or '1G', got 512 (int)"),
        ({"memory": "1Gi", "memory_mb": 1}, "resources for step 'train' set both 'memory' and 'memory_mb': expected one of them"),
        (4, "step option 'resources' for step 'train' expects a mapping with keys cpu, gpu, memory, memory_mb, got 4 (int)"),
    ],
)
def test_resources_rejections(value: object, message: str) -> None:
    with pytest.raises(InvalidPipeline) as caught:
        Resources.parse(value, step="train")  # type: ignore[arg-type]
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry": 2}, f"unknown step option 'retry' for step 'train': expected one of {ALL_OPTIONS}; did you mean 'retries'?"),
        ({"gpus": 1}, f"unknown step option 'gpus' for step 'train': expected one of {ALL_OPTIONS}"),
        ({"retries": -1}, "step option 'retries' for step 'train' expects an integer >= 0, got -1 (int)"),
        ({"retries": 1.5}, "step option 'retries' for step 'train' expects an integer >= 0, got 1.5 (float)"),
        ({"retries": True}, "step option 'retries' for step 'train' expects an integer >= 0, got True (bool)"),
        ({"retry_backoff_s": -1}, "step option 'retry_backoff_s' for step 'train' expects seconds >= 0, got -1 (int)"),
        ({"timeout_s": 0}, "step option 'timeout_s' for step 'train' expects seconds > 0 or None, got 0 (int)"),
        ({"timeout_s": "60"}, "step option 'timeout_s' for step 'train' expects seconds > 0 or None, got '60' (str)"),
        ({"cache": "yes"}, "step option 'cache' for step 'train' expects True or False, got 'yes' (str)"),
        ({"outputs": []}, f"{OUTPUTS}, got () (tuple)"),
        (
            {"outputs": ["a", "b", "a"]},
            "step option 'outputs' for step 'train' expects a non-empty list of unique identifiers, got 'a' more than once",
        ),
        (
            {"outputs": ["model", "1st"]},
            "step option 'outputs' for step 'train' expects a non-empty list of unique identifiers, got '1st' (str) among them",
        ),
        ({"outputs": 3}, "step option 'outputs' for step 'train' expects a non-empty list of unique identifiers, got 3 (int)"),
        ({"materializer": ""}, "step option 'materializer' for step 'train' expects a plugin name or None, got '' (str)"),
        (
            {"name": "my step"},
            "step option 'name' for step 'train' expects letters, digits, '_', '-' or '.', starting with a letter or '_', "
            "got 'my step' (str)",
        ),
    ],
)
def test_step_option_rejections(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPipeline) as caught:
        StepOptions.parse("train", **options)
    assert caught.value.message == message


def test_messages_name_the_step_by_its_option_name_first() -> None:
    with pytest.raises(InvalidPipeline, match="'retries' for step 'fit' expects"):
        StepOptions.parse("train", name="fit", retries=-1)
    with pytest.raises(InvalidPipeline, match=r"^unknown step option 'retry': expected one of"):
        StepOptions.parse(retry=1)


def test_invalid_pipeline_is_what_callers_already_catch() -> None:
    with pytest.raises(ValueError, match="retries"):
        StepOptions.parse(retries=-1)
    assert issubclass(InvalidPipeline, InvalidInput)
    assert (InvalidPipeline.code, InvalidPipeline.status_code) == ("invalid_pipeline", 400)


def test_constructors_check_too() -> None:
    with pytest.raises(InvalidPipeline, match="'cpu' expects a number >= 0, got -2"):
        Resources(cpu=-2)
    with pytest.raises(InvalidPipeline, match="'retries' expects an integer >= 0"):
        StepOptions(retries=-1)
    with pytest.raises(InvalidPipeline, match="'outputs' for step 'fit' expects"):
        StepOptions(name="fit", outputs=())


def test_to_dict_is_json_and_rebuilds_the_same_options() -> None:
    options = StepOptions.parse(resources={"cpu": 2, "memory": "1Gi"}, retries=1, outputs=("a", "b"), timeout_s=5)
    data = json.loads(json.dumps(options.to_dict()))
    assert data == {
        "name": None,
        "resources": {"cpu": 2.0, "memory_mb": 1024, "gpu": 0.0},
        "retries": 1,
        "retry_backoff_s": 1.0,
        "timeout_s": 5.0,
        "cache": True,
        "outputs": ["a", "b"],
        "materializer": None,
    }
    assert StepOptions.parse(**data) == options
