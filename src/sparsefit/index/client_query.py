"""sparsefit's queries and filters in qdrant-client's terms: plain, two-stage, hybrid, relevance feedback, boosts.

The engine (``client.py``) connects, stores and runs; this module only translates a
:class:`~sparsefit.index.base.PreparedQuery` (and a :class:`~sparsefit.index.filters.Filter`) into
qdrant-client's models, the counterpart of ``edge_query.py``.

Example:
    >>> client_fusion(Fusion("rrf", (0.7, 0.3))).rrf.weights
    [0.7, 0.3]
"""

from __future__ import annotations

from typing import Any

from qdrant_client import models as qm

from sparsefit.index.prepared import CANDIDATE_VECTOR, VECTOR_NAME, PreparedQuery, fusion_legs
from sparsefit.index.boost import Boost
from sparsefit.index.filters import Condition, Filter, Match
from sparsefit.index.fusion import Fusion
from sparsefit.index.ids import point_id




def scoring(q: PreparedQuery, f: qm.Filter | None, local: bool) -> dict[str, Any]:
    """A query's prefetch, scoring query, vector and search params: plain, two-stage, relevance feedback or hybrid."""
    if q.legs is not None:  # one prefetch per non-empty leg, fused by the engine
        legs, fusion = fusion_legs(q)
        depth = q.depth or max(fusion.prefetch, q.limit)
        prefetch = [
            qm.Prefetch(prefetch=_candidates(q, (idx, vals), f), query=_feedback_query(q, (idx, vals)), using=name,
                        limit=depth, filter=f)
            if q.feedback is not None and name == VECTOR_NAME
            else qm.Prefetch(query=_vector(idx, vals), using=name, limit=depth, filter=f)
            for name, idx, vals in legs
        ]
        return {"prefetch": prefetch, "query": client_fusion(fusion)}
    if q.feedback is not None:
        return {"prefetch": _candidates(q, (q.indices, q.values), f), "query": _feedback_query(q, (q.indices, q.values)),
                "using": VECTOR_NAME}
    parts: dict[str, Any] = {"query": _vector(q.indices, q.values), "using": q.using}
    if q.candidate is not None:
        find = qm.SparseVector(indices=q.candidate[0], values=q.candidate[1])
        parts["prefetch"] = qm.Prefetch(query=find, using=CANDIDATE_VECTOR, limit=q.candidates, filter=f)
        # score the candidates directly (local mode always does, and warns about params)
        parts["params"] = None if local else qm.SearchParams(exact=True)
    return parts


def client_boost(boost: Boost) -> qm.FormulaQuery:
    """``$score · (1 + Σ weight · field)`` as qdrant-client's formula (a true boolean field counts 1, a missing field 0)."""
    terms: list[Any] = [1.0]
    for key, weight, kind in boost.weights:
        value = qm.FieldCondition(key=key, match=qm.MatchValue(value=True)) if kind == "bool" else key
        terms.append(qm.MultExpression(mult=[weight, value]))
    defaults = {key: 0.0 for key, _, kind in boost.weights if kind != "bool"}
    return qm.FormulaQuery(formula=qm.MultExpression(mult=["$score", qm.SumExpression(sum=terms)]), defaults=defaults or None)


def _candidates(q: PreparedQuery, target: tuple[list[int], list[float]], f: qm.Filter | None) -> qm.Prefetch:
    """The plain query's top products, which relevance feedback rescores."""
    depth = max(q.strategy.depth if q.strategy else 0, q.depth)
    return qm.Prefetch(query=qm.SparseVector(indices=target[0], values=target[1]), using=VECTOR_NAME, limit=depth, filter=f)


def _feedback_query(q: PreparedQuery, target: tuple[list[int], list[float]]) -> qm.RelevanceFeedbackQuery:
    """Qdrant's naive relevance-feedback query on the learned vectors."""
    st = q.strategy
    assert st is not None and q.feedback is not None
    items = [qm.FeedbackItem(example=qm.SparseVector(indices=idx, values=vals), score=score) for idx, vals, score in q.feedback]
    return qm.RelevanceFeedbackQuery(relevance_feedback=qm.RelevanceFeedbackInput(
        target=qm.SparseVector(indices=target[0], values=target[1]), feedback=items,
        strategy=qm.NaiveFeedbackStrategy(naive=qm.NaiveFeedbackStrategyParams(a=st.a, b=st.b, c=st.c))))


def client_fusion(fusion: Fusion) -> Any:
    """A :class:`Fusion` as qdrant-client's query over the prefetches, in their order.

    Example:
        >>> client_fusion(Fusion("rrf", (0.7, 0.3))).rrf.weights
        [0.7, 0.3]
    """
    if fusion.method == "rrf":
        return qm.RrfQuery(rrf=qm.Rrf(k=fusion.k, weights=list(fusion.weights)))
    if fusion.method == "dbsf":
        return qm.FusionQuery(fusion=qm.Fusion.DBSF)
    terms = [
        qm.MultExpression(mult=[w, qm.DivExpression(div=qm.DivParams(
            left=f"$score[{i}]", right=qm.SumExpression(sum=[f"$score[{i}]", scale])))])
        for i, (w, scale) in enumerate(zip(fusion.weights, fusion.scales or ()))
    ]
    return qm.FormulaQuery(formula=qm.SumExpression(sum=terms), defaults={f"$score[{i}]": 0.0 for i in range(len(terms))})


def _vector(indices: list[int] | None, values: list[float]) -> Any:
    """A query vector for qdrant-client: sparse (indices, values), or dense (no indices)."""
    return values if indices is None else qm.SparseVector(indices=indices, values=values)


def client_filter(f: Filter | None) -> qm.Filter | None:
    """Translate a :class:`Filter` into a qdrant-client filter.

    Example:
        >>> from sparsefit.index import Range
        >>> client_filter(Filter(must=[Range("price", lt=50)])).must[0].range.lt
        50.0
    """
    if f is None or f.is_empty:
        return None
    must_not: list[Any] = [_client_condition(c) for c in f.must_not]
    if f.exclude_ids:
        must_not.append(qm.HasIdCondition(has_id=[point_id(pid) for pid in f.exclude_ids]))
    must = [_client_condition(c) for c in f.must]
    return qm.Filter(must=must or None, must_not=must_not or None)


def _client_condition(c: Condition) -> Any:
    if not isinstance(c, Match):
        return qm.FieldCondition(key=c.key, range=qm.Range(gt=c.gt, gte=c.gte, lt=c.lt, lte=c.lte))
    values = c.values
    if len(values) == 1:
        return qm.FieldCondition(key=c.key, match=qm.MatchValue(value=values[0]))
    if isinstance(values[0], bool):  # MatchAny takes strings or integers only
        return qm.Filter(
            should=[qm.FieldCondition(key=c.key, match=qm.MatchValue(value=v)) for v in values]
        )
    return qm.FieldCondition(key=c.key, match=qm.MatchAny(any=list(values)))
