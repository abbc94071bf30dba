class FeatureVersionMismatch(Exception):  # noqa: N818  (the name is part of the contract)
    """A model was trained on one feature version and is asked to score another."""

    def __init__(self, *, expected: str, current: str) -> None:
        self.expected = expected
        self.current = current
        super().__init__(
            f"The model was trained on features {expected!r} but the feature store now "
            f"computes {current!r}; retrain the model (or rebuild the features of "
            f"{expected!r}) before scoring with it."
        )


class FeatureSetConflict(Exception):  # noqa: N818
    """The stored definition of a version differs from the running code's."""
