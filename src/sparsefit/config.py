"""All settings in one pydantic-settings model, read in one place.

Priority, highest first: CLI flags (passed as keyword arguments), ``SPARSEFIT_*`` environment
variables, a YAML or TOML config file, then the defaults below.

Example:
    >>> s = load_settings(seed=7)
    >>> s.seed, s.test_fraction
    (7, 0.2)
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.threads import apply_threads

CONFIG_FILE_ENV = "SPARSEFIT_CONFIG"  # a user's own default config file
_CONFIG_FILE: ContextVar[str | None] = ContextVar("sparsefit_config_file", default=None)

# A bearer token shorter than this is refused for every command (and by the web app): an empty one
# would switch authentication off, a short one can be guessed.
MIN_TOKEN_LENGTH = 16
TOKEN_EXAMPLE = 'python -c "import secrets; print(secrets.token_urlsafe(24))"'


def token_problem(token: str | None) -> str | None:
    """Why ``token`` cannot be a bearer token, or None when it can (None itself: no token, fine here).

    Refused: empty or whitespace-only tokens, tokens shorter than :data:`MIN_TOKEN_LENGTH`
    characters, and tokens starting or ending with whitespace (HTTP strips it, so they never match).

    Example:
        >>> token_problem("abc")
        'the token has only 3 characters; it must be at least 16 characters, e.g. generate one with `python -c "import secrets; print(secrets.token_urlsafe(24))"`'
        >>> token_problem("x" * 16) is None
        True
    """
    if token is None:
        return None
    if not token.strip():
        what = "is empty" if not token else "is only whitespace"
    elif token != token.strip():
        what = "starts or ends with whitespace"
    elif len(token) < MIN_TOKEN_LENGTH:
        what = f"has only {len(token)} character{'s' if len(token) != 1 else ''}"
    else:
        return None
    return f"the token {what}; it must be at least {MIN_TOKEN_LENGTH} characters, e.g. generate one with `{TOKEN_EXAMPLE}`"


class Settings(BaseSettings):
    """Every setting of a sparsefit run; saved resolved into the run folder."""

    model_config = SettingsConfigDict(env_prefix="SPARSEFIT_", extra="forbid", validate_assignment=True)

    # -- catalog ----------------------------------------------------------------------------
    id_field: str | None = Field(None, description="catalog column holding the product id (detected if unset)")
    text_fields: list[str] | None = Field(None, description="catalog columns that make the product text")
    template: str | None = Field(None, description='Python format string for the product text, e.g. "{brand} {title}"')
    encoding: str | None = Field(None, description="text encoding of the input files (default: UTF-8, with or without BOM)")
    on_invalid: Literal["error", "skip"] = Field("error", description="bad rows: stop with an error, or skip and count them")
    max_decompressed_mb: int = Field(
        512, ge=1, description="largest decompressed size of a .gz/.bz2/.xz catalog or judgments file (a guard against decompression bombs)"
    )

    # -- judgments --------------------------------------------------------------------------
    query_field: str | None = Field(None, description="judgments column holding the query text")
    judgment_id_field: str | None = Field(None, description="judgments column holding the product id")
    label_field: str | None = Field(None, description="judgments column holding the label")
    label_scheme: Literal["esci", "wands", "graded", "binary"] | None = Field(None, description="force a label scheme")
    gains: dict[str, float] | None = Field(None, description="gain per label, e.g. {E: 1, S: 0.1, C: 0.01, I: 0}")
    relevant_threshold: float | None = Field(None, description="a gain at or above this counts as relevant")
    on_unknown_product: Literal["drop", "error"] = Field("drop", description="judgments naming products not in the catalog")
    on_conflict: Literal["mean", "first", "error"] = Field(
        "mean", description="a (query, product) judged twice with different labels: average, keep the first, or stop"
    )

    # -- split ------------------------------------------------------------------------------
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of judged queries held out for evaluation")
    seed: int = Field(13, description="seed for the split and everything random")
    test_judgments: Path | None = Field(None, description="a separate file of held-out judgments (instead of a random split)")
    split_file: Path | None = Field(None, description="reuse the query split saved in this split.json")
    validation_queries: int = Field(
        500, ge=0, description="training queries kept out of training to fit hybrid fusion weights on (at most a tenth of them; 0: none, hybrid rows not fitted)"
    )
    dense: str | None = Field(
        None, description="a dense sentence-transformers model (e.g. minilm-l6, offline) indexed beside the sparse vectors: a dense row and three-way hybrid rows in the report"
    )
    fusion: Literal["rrf", "dbsf", "formula"] = Field(
        "rrf", description="how hybrid retrieval fuses the model's and BM25's results in Qdrant: weighted RRF, DBSF, or a formula of squashed scores"
    )

    # -- models and encoding ---------------------------------------------------------------
    models: list[str] = Field(["splade-tiny"], description="base models to evaluate: aliases, folders or hub ids")
    architecture: Literal["splade", "inference-free"] = Field("splade", description="SPLADE or inference-free SPLADE")
    bm25: bool = Field(True, description="evaluate BM25 (bm25s) as the baseline")
    batch_size: int = Field(ENCODE_BATCH_SIZE, gt=0, description="texts per encoding batch")
    max_seq_length: int = Field(128, gt=0, description="tokens kept per text")
    threads: int | None = Field(
        None, gt=0, description="CPU threads for torch and the tokenizers (default: all cores); load_settings applies it"
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|mps|cuda(:\d{1,3})?)$",
        description="where models train and encode: auto (a CUDA GPU when present, else the CPU), cpu, cuda, cuda:N or mps",
    )

    # -- training ---------------------------------------------------------------------------
    model_type: Literal["splade", "minicoil"] = Field(
        "splade", description="splade (fine-tuned in rounds on judged or generated queries) or minicoil (per-word sense "
        "layers trained on the catalog alone; BM25's matching and IDF)")
    minicoil_encoder: str = Field("minilm-l6", description="miniCOIL: the sentence-transformers model whose token embeddings give word meanings")
    minicoil_sentence_model: str = Field("minilm-l6", description="miniCOIL: the sentence-transformers model whose sentence embeddings teach the layers")
    minicoil_min_contexts: int = Field(10, ge=2, description="miniCOIL: products a word needs to get its own layer (else it matches exactly, as in BM25)")
    minicoil_max_contexts: int = Field(200, ge=2, description="miniCOIL: at most this many of a word's products train its layer")
    base_model: str = Field("splade-tiny", description="model to fine-tune: alias, folder or hub id")
    rounds: int = Field(3, ge=1, description="training rounds: round 0 uses in-batch negatives, later rounds mined ones")
    epochs: float = Field(1.0, gt=0, description="epochs over the training pairs in round 0")
    mining_epochs: float | None = Field(
        None, gt=0, description="epochs over the training rows in each mining round (default: as in round 0)"
    )
    train_batch_size: int = Field(64, ge=2, description="(query, positive) rows per training batch")
    learning_rate: float = Field(2e-4, gt=0, description="learning rate of the transformer")
    static_learning_rate: float = Field(1e-3, gt=0, description="learning rate of inference-free SPLADE's static query weights")
    query_regularizer_weight: float = Field(5e-5, ge=0, description="FLOPS regulariser weight on queries")
    document_regularizer_weight: float = Field(3e-5, ge=0, description="FLOPS regulariser weight on documents")
    train_max_seq_length: int = Field(64, gt=0, description="tokens kept per text while training")
    train_precision: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="training arithmetic: bfloat16 or float16 autocast (weights and saved models stay float32; float16 on CUDA only, with a loss scaler), float32, or auto: on CUDA bfloat16 where the GPU has it, else float16; on the CPU bfloat16 for models of hidden size 256+ on CPUs with AMX or AVX512-BF16, else float32",
    )
    positive_min_gain: float | None = Field(
        None, description="round 0: a judged product is a training positive at this gain or more (default: graded scales all but their lowest third, others the relevant threshold)"
    )
    mined_positive_min_gain: float | None = Field(
        None, description="mining rounds: a judged product is a training positive, with mined negatives, at this gain or more (default: graded scales their top fifth, others the relevant threshold)"
    )
    negatives: int = Field(2, ge=1, description="mined hard negatives per training row")
    mining_top_k: int = Field(50, ge=1, description="candidates searched per training query when mining")
    mining_strategy: Literal["top", "mixed", "random"] = Field("mixed", description="how negatives are sampled from the candidates: the hardest (top), any (random), or half each (mixed)")
    export_model: Literal["average", "last"] = Field(
        "average", description="the exported model: the weight average of every round's model, or the last round's"
    )
    mine_judged_partials: bool = Field(
        False, description="let products judged for a query at a grade above zero but below a training positive (e.g. ESCI Substitutes) be mined as its hard negatives"
    )
    false_negative_fraction: float = Field(
        0.95, gt=0, description="drop candidates scoring at or above this fraction of the query's positive score"
    )

    # -- generated training queries (when no judgments are given) -----------------------------
    queries_per_product: int = Field(2, ge=1, description="generated queries per product")
    query_products: int | None = Field(None, ge=1, description="generate for a seeded sample of this many products (default: all, or --train-products)")
    train_products: int | None = Field(
        None, ge=1, description="large catalogs: train on the queries of a seeded sample of this many products (judged positives in "
        "it, or queries generated for it); mining and evaluation still search the whole catalog (default: all)")
    query_typo_rate: float = Field(0.08, ge=0, le=1, description="share of offline queries given one realistic typo")
    llm_url: str | None = Field(
        None, description="OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, LiteLLM); with llm_model, an LLM writes the queries"
    )
    llm_model: str | None = Field(None, description="chat model that writes the queries (default: offline generator)")
    llm_api_key: SecretStr | None = Field(None, description="LLM API key (set SPARSEFIT_LLM_API_KEY or OPENAI_API_KEY)")
    llm_products_per_request: int = Field(10, ge=1, description="products per LLM request")
    llm_concurrency: int = Field(4, ge=1, description="LLM requests in flight at once")
    llm_max_retries: int = Field(4, ge=0, description="retries of a failed LLM request (exponential backoff)")
    llm_prompt_file: Path | None = Field(None, description="prompt template file with {products} (and {per_product})")

    # -- index ------------------------------------------------------------------------------
    qdrant_url: str | None = Field(None, description="Qdrant server or cluster URL (default: Qdrant Edge in-process)")
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant API key (set SPARSEFIT_QDRANT_API_KEY)")
    collection: str = Field("catalog", description="collection name on a Qdrant server")
    qdrant_shards: int | None = Field(
        None, ge=1, description="a new server collection's shards, spread over the cluster's nodes (default: the server's, one per node)"
    )
    qdrant_replicas: int | None = Field(
        None, ge=1, description="copies of each shard on different nodes: a collection that survives a node (default: the server's, 1)"
    )
    qdrant_write_consistency: int | None = Field(
        None, ge=1, description="replicas that must confirm each write before it counts as done, at most qdrant_replicas (default: the server's, 1)"
    )
    qdrant_on_disk: bool = Field(False, description="a new index keeps its sparse index and payloads on disk (memory-mapped) instead of in memory")
    retrieve_k: int = Field(100, ge=10, description="results retrieved per query for evaluation")
    search_posting_cap: int | None = Field(
        None, ge=1, description="two-stage search for large catalogs: a candidate index keeps each term's N heaviest products and the candidates are rescored exactly (e.g. 20000; default: exact search)"
    )
    search_query_terms: int = Field(8, ge=1, description="two-stage search: the query's heaviest terms that find candidates")
    search_candidates: int = Field(50, ge=1, description="two-stage search: candidates rescored exactly per query")

    # -- serving and studio -----------------------------------------------------------------
    host: str = Field("127.0.0.1", description="address the service binds; any other than loopback needs a token")
    port: int = Field(8000, ge=1, le=65535, description="port of the service")
    token: SecretStr | None = Field(
        None, description=f"bearer token for every endpoint, at least {MIN_TOKEN_LENGTH} characters (set SPARSEFIT_TOKEN)"
    )
    workspace: Path = Field(Path("sparsefit-studio"), description="studio folder: its runs, jobs and uploads")
    allow_roots: list[Path] | None = Field(None, description="folders whose files the studio may train on (default: the current folder)")
    max_upload_mb: int = Field(200, ge=1, description="largest file the studio accepts as an upload")
    max_jobs: int = Field(1, ge=1, le=64, description="studio training jobs run at once (the others wait queued); training uses every core")

    # -- output -----------------------------------------------------------------------------
    output: Path | None = Field(None, description="output folder (default: runs/<command>-<time>)")

    @field_validator("text_fields", "models", "allow_roots", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("minicoil_max_contexts")
    @classmethod
    def _check_minicoil_contexts(cls, value: int, info: ValidationInfo) -> int:
        """Refused at once, not after the baselines (and a resumed run would fail the same way every time)."""
        low = info.data.get("minicoil_min_contexts")
        if low is not None and value < low:
            raise ValueError(f"it must be at least minicoil_min_contexts ({low}): a word's layer trains on up to this many products")
        return value

    @field_validator("qdrant_shards", "qdrant_replicas", "qdrant_write_consistency")
    @classmethod
    def _check_sharding(cls, value: int | None, info: ValidationInfo) -> int | None:
        """Sharding and replication apply to a server collection: refused at once without qdrant_url (not when
        the index is built, after training), as is a write consistency above the replicas."""
        if value is not None and not info.data.get("qdrant_url"):
            raise ValueError("it shards or replicates a collection on a Qdrant server; give qdrant_url too (Qdrant Edge is one local shard)")
        replicas = info.data.get("qdrant_replicas")
        if info.field_name == "qdrant_write_consistency" and value is not None and replicas is not None and value > replicas:
            raise ValueError(f"{value} replicas cannot confirm a write when each shard has {replicas}; lower it to at most qdrant_replicas")
        return value

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        problem = token_problem(secret(value))
        if problem:
            raise ValueError(problem)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    def public_dict(self) -> dict[str, Any]:
        """Settings as plain JSON/YAML values without the API keys (they come from the environment)."""
        data = self.model_dump(mode="json")
        for secret in SECRETS:
            data.pop(secret, None)
        return data


SECRETS = ("qdrant_api_key", "llm_api_key", "token")


class _FileSource(PydanticBaseSettingsSource):
    """Reads the YAML/TOML file given to ``load_settings`` (else the one a user names in ``SPARSEFIT_CONFIG``).

    The file is handed over in a context variable, not the environment: two threads loading settings
    from different files (the studio's /api/defaults and a service opening a run) never see each other's."""

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the ABC
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _CONFIG_FILE.get() or os.environ.get(CONFIG_FILE_ENV)
        return read_config_file(Path(path)) if path else {}


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml) or TOML (.toml) settings file into a dict."""
    if not path.is_file():
        raise SparsefitError("config file not found", file=path, hint="check the path given to --config")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise SparsefitError("config file must end in .yaml, .yml or .toml", file=path)
    except (yaml.YAMLError, ValueError) as exc:
        raise SparsefitError(f"config file is not valid ({str(exc).splitlines()[0]})", file=path,
                             hint="fix its syntax (YAML: `setting: value` per line; TOML: `setting = value`)") from None
    if not isinstance(data, dict):
        raise SparsefitError("config file must hold a mapping of setting: value", file=path)
    return {key.replace("-", "_"): value for key, value in data.items()}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Resolve the settings: ``overrides`` (CLI flags; None means unset) > env > file > defaults.

    When the resolved ``threads`` is set, it is applied to this process (see :func:`apply_threads`),
    so every CLI command and every API call that loads settings honours ``SPARSEFIT_THREADS``.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    token = _CONFIG_FILE.set(str(config_file) if config_file is not None else None)
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        named = config_file or os.environ.get(CONFIG_FILE_ENV)
        source = f" (from {named})" if named else ""
        message = first["msg"].removeprefix("Value error, ")  # our own validators' messages, as written
        raise SparsefitError(
            f"setting '{name}' is invalid{source}: {message}",
            hint=f"change --{name.replace('_', '-')}, SPARSEFIT_{name.upper()} or the config file",
        ) from None
    finally:
        _CONFIG_FILE.reset(token)
    apply_threads(settings)
    return settings


def secret(value: SecretStr | None) -> str | None:
    """The plain text of a secret setting (token, API keys), or None when it is unset.

    Example:
        >>> secret(Settings(token="x" * 16).token), secret(None)
        ('xxxxxxxxxxxxxxxx', None)
    """
    return value.get_secret_value() if value is not None else None


def save_settings(settings: Settings, path: Path) -> None:
    """Write the resolved settings as YAML (atomically)."""
    from sparsefit.files import write_atomic

    write_atomic(path, yaml.safe_dump(settings.public_dict(), sort_keys=False))
