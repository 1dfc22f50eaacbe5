"""The one mapping between product ids and Qdrant point ids, in both directions.

Product ids are strings; Qdrant point ids are unsigned integers or UUIDs. Every conversion in
the index layer goes through this module:

* :func:`point_id` (product id -> point id): a canonical non-negative decimal below 2**63 becomes
  that integer, anything else a UUID5 of it, so ``"00123"`` and ``"123"`` stay different points.
  The product id itself is stored in the payload (``payloads.ID_KEY``), which is how a hit finds
  its way back; a point without it falls back to :func:`point_key`.
* :func:`point_key` (point id -> text): the text form of a point id as an engine returns it, as
  the two-stage vector copy stores it (``rescore.py``) and as the product id of a point whose
  payload lost its own.
* :func:`point_number` (point id in any form -> int): one comparable integer for whatever form an
  engine returns (int, UUID, UUID text) or :func:`point_key` wrote; it matches the points an
  engine returns to the ones asked for.

Example:
    >>> pid = point_id("SKU-7")
    >>> point_number(pid) == point_number(point_key(pid)) > 2**76, point_number(point_id("42"))
    (True, 42)
"""

from __future__ import annotations

import uuid

from sparsefit.errors import SparsefitError

MAX_INT_ID = 2**63
# Fixed forever: changing it would orphan every stored text id.
ID_NAMESPACE = uuid.UUID("6b1f3c52-0d7e-5a3e-9c1a-5f0e2b7d8a41")

PointId = int | str | uuid.UUID  # a point id in any form an engine returns


def point_id(product_id: str) -> int | str:
    """Map a product id to a Qdrant point id.

    A canonical non-negative decimal below 2**63 becomes that integer; anything else becomes
    a UUID5 string, so ``"00123"`` and ``"123"`` stay different points.

    Example:
        >>> point_id("42")
        42
        >>> point_id("SKU-7") == point_id("SKU-7") and isinstance(point_id("SKU-7"), str)
        True
    """
    if not isinstance(product_id, str):
        raise SparsefitError(
            f"product id {product_id!r} is a {type(product_id).__name__}, not a string",
            hint="convert product ids with str() before indexing",
        )
    if not product_id:
        raise SparsefitError("a product id is empty", hint="give every product a non-empty id")
    if product_id.isascii() and product_id.isdigit():
        n = int(product_id)
        if str(n) == product_id and n < MAX_INT_ID:
            return n
    return str(uuid.uuid5(ID_NAMESPACE, product_id))


def point_key(pid: PointId) -> str:
    """The text form of a point id as any engine returns it (int, str or UUID).

    Example:
        >>> point_key(42), point_key(uuid.UUID(int=1))
        ('42', '00000000-0000-0000-0000-000000000001')
    """
    return str(pid)


def point_number(pid: PointId) -> int:
    """One integer per Qdrant point id, as the engine returns it or :func:`point_key` wrote it.

    Integer ids stay below 2**63 and version-5 UUIDs lie above 2**76, so the two never meet.

    Example:
        >>> point_number(42), point_number("42"), point_number("6b1f3c52-0d7e-5a3e-9c1a-5f0e2b7d8a41") > 2**76
        (42, 42, True)
    """
    if isinstance(pid, int):
        return pid
    if isinstance(pid, uuid.UUID):
        return pid.int
    return int(pid) if pid.isdigit() else uuid.UUID(pid).int


def unique_point_ids(product_ids: list[str]) -> list[int | str]:
    """The point ids of ``product_ids``, which must not repeat (one row per product).

    Example:
        >>> unique_point_ids(["7", "SKU-7"])[0]
        7
    """
    seen: dict[str, int] = {}
    for i, pid in enumerate(product_ids):
        if pid in seen:
            raise SparsefitError(
                f"product id {pid!r} appears twice (positions {seen[pid]} and {i})",
                hint="give each product one row",
            )
        seen[pid] = i
    return [point_id(pid) for pid in product_ids]
