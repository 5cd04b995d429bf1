"""Which model made a set of vectors: what a build's manifest records and what opening checks.

Two loads of the same model agree on :attr:`ModelIdentity.probe` (the first dimensions of
one fixed text's vector) to within :data:`PROBE_TOLERANCE`; two different models, or one
model loaded with other pooling or normalisation, never do. That, with the dimension, is
what decides whether an index can be searched with a given embedder (invariant 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Embedded at load and compared with the manifest: the vectors of two models (or of one
#: model loaded with other pooling or normalisation) never agree on it.
PROBE_TEXT = "qa index probe: Japan proposed an Asian NATO and India declined."
#: How many leading dimensions of the probe vector are recorded: enough to tell models apart.
PROBE_DIMS = 16
#: How far two loads of the same model may differ on the probe vector (torch and its fp32
#: ONNX export differ by about 1e-6; different models by more than 0.1).
PROBE_TOLERANCE = 2e-3
#: The encoder an identity without an ``encoder`` entry was made by (builds before the ONNX path).
DEFAULT_ENCODER = "torch"


@dataclass(frozen=True)
class ModelIdentity:
    """A model as a manifest records it; ``encoder`` says what ran it (torch, onnx, onnx-int8)."""

    name: str
    revision: str
    dimension: int
    max_seq_length: int | None = None
    normalized: bool = True
    probe: tuple[float, ...] = ()
    #: ``None`` when the manifest did not record it (read as :data:`DEFAULT_ENCODER`).
    encoder: str | None = None

    @property
    def encoder_name(self) -> str:
        return self.encoder or DEFAULT_ENCODER

    def same_vectors(self, other: ModelIdentity) -> bool:
        """Whether vectors of ``other`` can be searched with this model's: same dimension and probe."""
        if self.dimension != other.dimension or len(self.probe) != PROBE_DIMS or len(other.probe) != PROBE_DIMS:
            return False
        return max(abs(a - b) for a, b in zip(self.probe, other.probe, strict=True)) <= PROBE_TOLERANCE

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``model`` entry (the keys builds have always written)."""
        out: dict[str, Any] = {
            "name": self.name,
            "revision": self.revision,
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            "normalized": self.normalized,
            "probe": list(self.probe),
        }
        if self.encoder is not None:
            out["encoder"] = self.encoder
        return out

    @classmethod
    def from_json(cls, raw: Any) -> ModelIdentity:
        """Read a manifest's ``model`` entry; :class:`ValueError` names what is missing or wrong."""
        if not isinstance(raw, dict):
            raise ValueError(f"the model entry is not an object (found {raw!r})")
        dimension = raw.get("dimension")
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
            raise ValueError(f"no valid model dimension (found {dimension!r})")
        probe = raw.get("probe") or []
        if not isinstance(probe, list) or not all(isinstance(x, int | float) for x in probe):
            raise ValueError(f"the model probe is not a list of numbers (found {probe!r})")
        max_seq_length = raw.get("max_seq_length")
        encoder = raw.get("encoder")
        return cls(
            name=str(raw.get("name", "")),
            revision=str(raw.get("revision", "")),
            dimension=dimension,
            max_seq_length=max_seq_length if isinstance(max_seq_length, int) else None,
            normalized=bool(raw.get("normalized", True)),
            probe=tuple(float(x) for x in probe),
            encoder=str(encoder) if encoder is not None else None,
        )
