"""``diswot-plus``: DisWOT's teacher similarity, ranked together with trainability, expressivity and size.

DisWOT's score (Dong et al., CVPR 2023) measures how similar a randomly initialised student's
features (M_r, Listing 2) and classifier Grad-CAM (M_s, Listing 1) are to the teacher's. On its
own its maximum sits among small, ``skip``/``none``-heavy NAS-Bench-201 cells that train badly
(BENCHMARKS.md, "Which score?"). ``diswot-plus`` keeps both similarity terms and ranks each
candidate, signal by signal, against a fixed reference sample of the search space, the way AZ-NAS
(Lee & Ham, CVPR 2024) aggregates its proxies (a sum of log ranks, which rewards a student that is
good at every signal):

* ``relation`` and ``semantic``: M_r and M_s, DisWOT's two distances to the teacher (ranked
  lower-is-better: teacher similarity);
* ``jacov``: the correlation of the input Jacobians over the probe batch (Mellor et al. 2020, v1),
  expressivity: how differently the student sees the images of the batch;
* ``synflow``: ln(1 + synaptic flow) (Tanaka et al., NeurIPS 2020), trainability;
* ``log_params``: ln(number of parameters), a size prior.

All signals come from one forward pass (with an input-gradient backward for ``jacov``) plus
SynFlow's batch-of-one pass on a copy. :meth:`combine` turns the raw terms into the score with a
:class:`~diswot.proxies.Reference`: the raw terms of a seeded sample of the space, scored
once per study and stored in it, so each trial's value is fixed, and resumed studies and many
workers agree.
"""

from __future__ import annotations

import math
from typing import ClassVar, Mapping

import torch

from diswot.spaces import FeatureNetwork

from ._base import RETEST, Batch, Reference, TeacherContext, register_proxy
from ._diswot import _DisWOTBase
from ._flops import FlopHooks
from ._jacov import jacobian_covariance_score
from ._synflow import SynflowProxy, synaptic_flow

__all__ = [
    "DisWOTBalance",
    "DisWOTCapacity",
    "DisWOTFlow",
    "DisWOTPlus",
    "DisWOTPrior",
    "DisWOTRank",
    "DisWOTRelationPlus",
    "DisWOTRetestBalance",
    "DisWOTSemanticCapacity",
    "DisWOTTeacherBalance",
    "DisWOTTeacherCapacity",
]


@register_proxy
class DisWOTPlus(_DisWOTBase):
    """DisWOT's two similarity terms, ``jacov``, ``synflow`` and ``log_params``, log-rank aggregated."""

    name: ClassVar[str] = "diswot-plus"
    needs_grad: ClassVar[bool] = True  # the input gradient of jacov
    citation: ClassVar[str] = (
        "Dong et al., DisWOT, CVPR 2023 (C.2); Mellor et al. 2020 (jacov); Tanaka et al. 2020 (SynFlow); "
        "Lee & Ham, AZ-NAS, CVPR 2024 (rank aggregation)"
    )
    reference_terms: ClassVar[tuple[str, ...]] = ("relation", "semantic", "jacov", "synflow", "log_params")

    #: terms that are distances to the teacher (M_s, M_r): ranked with their sign flipped
    lower_is_better: ClassVar[tuple[str, ...]] = ("relation", "semantic")

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Raw terms: ``semantic`` (M_s) and ``relation`` (M_r) as the ``diswot`` proxy reports
        them, ``diswot`` (its score), ``jacov``, ``synflow`` and ``log_params``."""
        x = batch.images.detach().clone().requires_grad_(True)
        params = [p for p in student.parameters() if p.requires_grad]
        for p in params:  # only the input gradient is needed
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                out = student.forward_all(x)
                (jac,) = torch.autograd.grad(out.logits.sum(), x, allow_unused=True)
        finally:
            for p in params:
                p.requires_grad_(True)
        similarity = self.similarity_terms(ctx, out, batch)
        return {
            "semantic": similarity["semantic"],
            "relation": similarity["relation"],
            "diswot": similarity["score"],
            "jacov": jacobian_covariance_score(jac if jac is not None else torch.zeros_like(x)),
            "synflow": SynflowProxy().evaluate(ctx, student, batch)["score"],
            "log_params": math.log(sum(p.numel() for p in params)),
        }

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """Sum over the signals of the log of the candidate's smooth rank in the reference."""
        return reference.log_rank_sum(terms, self.reference_terms, lower_is_better=self.lower_is_better)


@register_proxy
class DisWOTRelationPlus(DisWOTPlus):
    """DisWOT's relation term M_r with ``jacov``, ``synflow`` and ``log_params``, log-rank aggregated.

    ``diswot-plus`` without the semantic term M_s. At random initialisation M_s (the Grad-CAM
    distance of the classifiers) is the noisiest DisWOT term and its best values sit among small
    cells; M_r, the inter-sample relation distance (the paper's Listing 2), keeps the teacher
    similarity. On 1,000 NAS-Bench-201 cells it gives the best top of all scores with a DisWOT term
    (BENCHMARKS.md, "Which score?").
    """

    name: ClassVar[str] = "diswot-relation-plus"
    reference_terms: ClassVar[tuple[str, ...]] = ("relation", "jacov", "synflow", "log_params")
    lower_is_better: ClassVar[tuple[str, ...]] = ("relation",)


@register_proxy
class DisWOTRank(DisWOTPlus):
    """The paper's DisWOT score as one signal, log-rank aggregated with ``jacov``, ``synflow`` and ``log_params``.

    The best correlation with NAS-Bench-201 accuracy of all scores measured (Spearman 0.919 on
    1,000 cells, BENCHMARKS.md), with a weaker top than ``diswot-relation-plus``.
    """

    name: ClassVar[str] = "diswot-rank"
    reference_terms: ClassVar[tuple[str, ...]] = ("diswot", "jacov", "synflow", "log_params")
    lower_is_better: ClassVar[tuple[str, ...]] = ()


@register_proxy
class DisWOTFlow(_DisWOTBase):
    """DisWOT's relation term M_r with SynFlow and the FLOPs, log-rank aggregated: one forward pass.

    ``relation`` (the paper's Listing 2, teacher similarity), ``synflow`` (Tanaka et al., NeurIPS
    2020: trainability, on a batch-of-one copy) and ``log_flops`` (the student's compute, counted by
    hooks on the same forward) are ranked against the study's reference sample and summed as log
    ranks (Lee & Ham, AZ-NAS, CVPR 2024). The raw terms also hold M_s (``semantic``), the paper's
    score (``diswot``) and ``log_params``, at no extra cost. About one forward pass a candidate:
    SynFlow runs on the student itself once the DisWOT forward is done (:meth:`evaluate` consumes it,
    as :meth:`~diswot.proxies.Proxy.run` allows), not on a copy.
    """

    name: ClassVar[str] = "diswot-flow"
    needs_grad: ClassVar[bool] = True  # SynFlow's backward, on its own copy
    citation: ClassVar[str] = (
        "Dong et al., DisWOT, CVPR 2023 (C.2, Listing 2); Tanaka et al., SynFlow, NeurIPS 2020; "
        "Lee & Ham, AZ-NAS, CVPR 2024 (rank aggregation)"
    )
    reference_terms: ClassVar[tuple[str, ...]] = ("relation", "synflow", "log_flops")
    lower_is_better: ClassVar[tuple[str, ...]] = ("relation",)

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Raw terms: ``semantic``, ``relation``, ``diswot``, ``synflow``, ``log_flops``, ``log_params``."""
        with FlopHooks(student) as hooks, torch.inference_mode():
            out = student.forward_all(batch.images)
        similarity = self.similarity_terms(ctx, out, batch)
        log_params = math.log(sum(p.numel() for p in student.parameters() if p.requires_grad))
        # the student was built for this call and is used no more: SynFlow takes it over instead of a copy
        flow = synaptic_flow(student, batch.images)
        return {
            "semantic": similarity["semantic"],
            "relation": similarity["relation"],
            "diswot": similarity["score"],
            "synflow": math.log1p(flow),
            "log_flops": math.log(max(hooks.per_image, 1)),
            "log_params": log_params,
        }

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """Sum over the signals of the log of the candidate's smooth rank in the reference."""
        return reference.log_rank_sum(terms, self.reference_terms, lower_is_better=self.lower_is_better)


@register_proxy
class DisWOTBalance(DisWOTFlow):
    """DisWOT's two terms and SynFlow, balanced against the student's compute: one forward pass.

    Each signal is ranked against the study's reference sample as a standard-normal score
    (:meth:`~diswot.proxies.Reference.normal_score`): M_r and M_s, the paper's relation and semantic
    distances to the teacher (Listings 2 and 1, lower is better), and SynFlow (trainability). Their
    mean is added to the normal score of the log FLOPs, so teacher similarity and trainability on one
    side and the student's compute on the other weigh the same. A sum of normal scores, unlike a sum
    of log ranks, keeps ordering the candidates that rank above the whole reference sample, where a
    search's pick is made. Chosen by its worst case over NAS-Bench-201 and NAS-Bench-Macro
    (BENCHMARKS.md, "A default across families").
    """

    name: ClassVar[str] = "diswot-balance"
    citation: ClassVar[str] = (
        "Dong et al., DisWOT, CVPR 2023 (C.2, Listings 1 and 2); Tanaka et al., SynFlow, NeurIPS 2020"
    )
    reference_terms: ClassVar[tuple[str, ...]] = ("relation", "semantic", "synflow", "log_flops")
    lower_is_better: ClassVar[tuple[str, ...]] = ("relation", "semantic")
    #: the signals averaged on the teacher-similarity and trainability side
    similarity_terms_ranked: ClassVar[tuple[str, ...]] = ("relation", "semantic", "synflow")

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """Mean normal score of M_r, M_s and SynFlow, plus the normal score of the log FLOPs."""
        side = [
            reference.normal_score(k, terms[k], sign=-1.0 if k in self.lower_is_better else 1.0)
            for k in self.similarity_terms_ranked
        ]
        return float(sum(side) / len(side) + reference.normal_score("log_flops", terms["log_flops"]))


@register_proxy
class DisWOTCapacity(DisWOTBalance):
    """DisWOT's two terms and SynFlow, balanced against the student's size measured two ways.

    :class:`DisWOTBalance` with the size side made of the student's capacity and compute: the mean
    normal score of M_r, M_s (the paper's relation and semantic distances to the teacher, Listings
    2 and 1) and SynFlow, plus the mean normal score of the log parameters and the log FLOPs. One
    forward pass and SynFlow's batch-of-one pass, as ``diswot-balance``; no free weight beyond
    "each side weighs the same, each signal the same within its side". Which size measure tracks
    accuracy differs by family (parameters on S0's ResNets distilled from ResNet-110, FLOPs on
    NAS-Bench-Macro's MobileNetV2 students), so the score takes both. Chosen by its worst margin over
    ``params`` and ``flops`` on three development benchmarks, one of them distillation ground truth
    (BENCHMARKS.md, "Three benchmarks").
    """

    name: ClassVar[str] = "diswot-capacity"
    reference_terms: ClassVar[tuple[str, ...]] = ("relation", "semantic", "synflow", "log_params", "log_flops")
    #: the two measures of the student's size, averaged on the other side
    size_terms: ClassVar[tuple[str, ...]] = ("log_params", "log_flops")

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """Mean normal score of M_r, M_s and SynFlow, plus the mean normal score of log params and log FLOPs."""
        side = [
            reference.normal_score(k, terms[k], sign=-1.0 if k in self.lower_is_better else 1.0)
            for k in self.similarity_terms_ranked
        ]
        size = [reference.normal_score(k, terms[k]) for k in self.size_terms]
        return float(sum(side) / len(side) + sum(size) / len(size))


@register_proxy
class DisWOTSemanticCapacity(DisWOTCapacity):
    """DisWOT's semantic term and SynFlow, balanced against the student's size measured two ways.

    :class:`DisWOTCapacity` without the relation distance M_r: the mean normal score of M_s (the
    paper's semantic distance to the teacher, Listing 1, lower is better) and SynFlow, plus the mean
    normal score of the log parameters and the log FLOPs. With a trained teacher, a user's, M_r ranks
    students inversely on all three development benchmarks (Kendall -0.51 on S0, -0.15 on
    NAS-Bench-201, -0.04 on NAS-Bench-Macro, against +0.13, +0.22 and +0.37 with a teacher at the
    students' Gaussian init), so the teacher side keeps M_s alone (BENCHMARKS.md, "A trained
    teacher"). The same forward pass and SynFlow pass as ``diswot-capacity``; no free weight.
    """

    name: ClassVar[str] = "diswot-semantic-capacity"
    reference_terms: ClassVar[tuple[str, ...]] = ("semantic", "synflow", "log_params", "log_flops")
    similarity_terms_ranked: ClassVar[tuple[str, ...]] = ("semantic", "synflow")


@register_proxy
class DisWOTTeacherCapacity(DisWOTSemanticCapacity):
    """:class:`DisWOTSemanticCapacity` with the teacher choosing how much each size count weighs.

    Which count tracks how well a student distils differs by family: the parameters on S0's
    ResNets, the FLOPs on NAS-Bench-Macro's MobileNetV2 students. The teacher tells them apart
    without ground truth: across the study's reference sample, the students whose classifier
    Grad-CAM resembles the teacher's (a low M_s, the paper's Listing 1) are the large ones by one
    count more than by the other. Each count weighs by its Kendall tau with -M_s over the reference
    sample (floored at 0; equal weights if both are), normalised to the one size side of
    ``diswot-semantic-capacity``. A statistic of 64 students, stable where one student's M_s is
    noisy; the same terms and cost, no free weight (BENCHMARKS.md, "The teacher weighs the size counts").
    """

    name: ClassVar[str] = "diswot-teacher-capacity"
    #: the teacher term whose agreement with each size count weighs it
    judge: ClassVar[str] = "semantic"

    def size_weights(self, reference: Reference) -> list[float]:
        """Each size count's weight: its tau with the teacher-similarity over the reference, at least 0, summing to 1."""
        taus = [max(0.0, reference.agreement(self.judge, k, judge_sign=-1.0)) for k in self.size_terms]
        total = sum(taus)
        return [t / total for t in taus] if total > 0 else [1.0 / len(taus)] * len(taus)

    def reference_weights(self, reference: Reference) -> dict[str, float]:
        """The size counts' weights (``diswot score`` shows them)."""
        return dict(zip(self.size_terms, self.size_weights(reference)))

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """Mean normal score of M_s and SynFlow, plus the teacher-weighted normal scores of log params and log FLOPs."""
        side = [
            reference.normal_score(k, terms[k], sign=-1.0 if k in self.lower_is_better else 1.0)
            for k in self.similarity_terms_ranked
        ]
        size = sum(
            w * reference.normal_score(k, terms[k]) for k, w in zip(self.size_terms, self.size_weights(reference))
        )
        return float(sum(side) / len(side) + size)


@register_proxy
class DisWOTTeacherBalance(DisWOTTeacherCapacity):
    """:class:`DisWOTTeacherCapacity` with the teacher also setting how much the score leans on size.

    Across the study's reference sample the teacher's similarity (-M_s, the paper's Listing 1) agrees
    with each size count by a Kendall tau a_c (floored at 0). The counts weigh a_c squared, normalised
    to the size side's weight of 1 (equal weights if the teacher agrees with neither), and M_s and
    SynFlow each weigh (1 - max a_c) / 2 in place of 1/2: the more of the teacher's similarity a size
    count already carries, the more the score leans on that count and the less on the one-draw noise
    of M_s. Where the teacher agrees with no count, the score is ``diswot-semantic-capacity``. The
    same terms and cost, no fitted weight (BENCHMARKS.md, "The teacher balances size and similarity").
    """

    name: ClassVar[str] = "diswot-teacher-balance"
    #: the exponent of each count's agreement in its weight
    agreement_power: ClassVar[float] = 2.0

    def _agreements(self, reference: Reference) -> list[float]:
        return [max(0.0, reference.agreement(self.judge, k, judge_sign=-1.0)) for k in self.size_terms]

    def size_weights(self, reference: Reference) -> list[float]:
        """Each size count's weight: its agreement with the teacher's similarity, squared, summing to 1."""
        powered = [a**self.agreement_power for a in self._agreements(reference)]
        total = sum(powered)
        return [p / total for p in powered] if total > 0 else [1.0 / len(powered)] * len(powered)

    def similarity_weight(self, reference: Reference) -> float:
        """The weight of each of M_s and SynFlow: (1 - the largest agreement) / 2."""
        return (1.0 - max(self._agreements(reference))) / len(self.similarity_terms_ranked)

    def reference_weights(self, reference: Reference) -> dict[str, float]:
        """Every term's weight in the score (``diswot score`` shows them)."""
        side = self.similarity_weight(reference)
        return {**{k: side for k in self.similarity_terms_ranked}, **super().reference_weights(reference)}

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """The weighted sum of the normal scores of M_s (negated), SynFlow, log params and log FLOPs."""
        weights = self.reference_weights(reference)
        return float(
            sum(
                w * reference.normal_score(k, terms[k], sign=-1.0 if k in self.lower_is_better else 1.0)
                for k, w in weights.items()
            )
        )


@register_proxy
class DisWOTRetestBalance(DisWOTTeacherBalance):
    """:class:`DisWOTTeacherBalance` with the teacher's choices read from two draws of M_s.

    Every choice the teacher makes in ``diswot-teacher-balance`` (which size count weighs, and how far
    the score leans on size) comes from the agreement of M_s, the paper's classifier Grad-CAM
    distance (Listing 1), with each count across the reference sample; from one draw of the probe
    batch and the students' inits, a weak teacher's M_s can pick the wrong count by chance. The
    reference sample also scores M_s on a second draw (another probe batch and inits: one more
    student forward per reference architecture, none per candidate), and each count's agreement is
    its Kendall tau with the students' mean rank by -M_s over both draws. Each candidate's own M_s
    is still one draw, weighted as in ``diswot-teacher-balance``; no fitted weight. A reference stored
    without the second draw (an older study) scores as ``diswot-teacher-balance`` (BENCHMARKS.md,
    "M_s on a second draw").
    """

    name: ClassVar[str] = "diswot-retest-balance"
    retest_terms: ClassVar[tuple[str, ...]] = ("semantic",)

    def retest(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """M_s alone: one student forward in inference mode, no SynFlow pass."""
        with torch.inference_mode():
            out = student.forward_all(batch.images)
        return {"semantic": self.similarity_terms(ctx, out, batch)["semantic"]}

    def _agreements(self, reference: Reference) -> list[float]:
        """Each count's tau with the mean rank by -M_s over both draws (the first alone without a retest)."""
        draws = [self.judge, self.judge + RETEST] if self.judge + RETEST in reference.values else [self.judge]
        return [max(0.0, reference.agreement_of_mean(draws, k, judge_sign=-1.0)) for k in self.size_terms]


@register_proxy
class DisWOTPrior(_DisWOTBase):
    """The student's compute as the prior, DisWOT's two terms as the evidence: one forward pass.

    Each signal is ranked against the study's reference sample as a standard-normal score
    (:meth:`~diswot.proxies.Reference.normal_score`): the log FLOPs (counted by hooks on the same
    forward), and M_r and M_s, the paper's relation and semantic distances to the teacher (Listings
    2 and 1, lower is better). The score is the normal score of the compute plus half the mean of
    the two similarity scores: among students of similar compute, the one whose features and
    Grad-CAM resemble the teacher's ranks first. One free weight (the half), chosen by the worst
    of three development benchmarks, one of them distillation ground truth (BENCHMARKS.md, "Three
    benchmarks"). No SynFlow pass: the raw terms cost one student forward in inference mode.
    """

    name: ClassVar[str] = "diswot-prior"
    citation: ClassVar[str] = "Dong et al., DisWOT, CVPR 2023 (C.2, Listings 1 and 2)"
    reference_terms: ClassVar[tuple[str, ...]] = ("relation", "semantic", "log_flops")
    lower_is_better: ClassVar[tuple[str, ...]] = ("relation", "semantic")
    #: the weight of the teacher-similarity evidence against the compute prior
    similarity_weight: ClassVar[float] = 0.5

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Raw terms: ``semantic``, ``relation``, ``diswot``, ``log_flops`` and ``log_params``."""
        with FlopHooks(student) as hooks, torch.inference_mode():
            out = student.forward_all(batch.images)
        similarity = self.similarity_terms(ctx, out, batch)
        return {
            "semantic": similarity["semantic"],
            "relation": similarity["relation"],
            "diswot": similarity["score"],
            "log_flops": math.log(max(hooks.per_image, 1)),
            "log_params": math.log(sum(p.numel() for p in student.parameters() if p.requires_grad)),
        }

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """Normal score of the log FLOPs plus ``similarity_weight`` x the mean normal score of M_r and M_s."""
        similarity = [reference.normal_score(k, terms[k], sign=-1.0) for k in self.lower_is_better]
        prior = reference.normal_score("log_flops", terms["log_flops"])
        return float(prior + self.similarity_weight * sum(similarity) / len(similarity))
