"""motif: interpretable video classification with temporal concept bottlenecks (MoTIF).

    import motif

    model = motif.load("runs/ucf101/best.ckpt", device="cpu")   # a VideoClassifier
    model.predict("some.mp4").top(3)                             # [(class name, probability), ...]
    model.explain(frames, fps=25, out_dir="report/")             # frames: uint8 [N, H, W, 3]

``import motif`` imports nothing heavy: ``load``, ``VideoClassifier``, ``Prediction`` (``motif.inference``)
and ``FrameArray`` (``motif.video``) are imported on first use. The packages, bottom to top, are listed
in the README's layout section; the command-line tools in ``tools/`` are thin scripts over them.
"""

__version__ = "0.1.0"

__all__ = ["FrameArray", "Prediction", "VideoClassifier", "__version__", "load"]

_INFERENCE_NAMES = ("Prediction", "VideoClassifier", "load")


def __getattr__(name: str) -> object:
    """The front door's names, imported (and then kept) on first access."""
    if name in _INFERENCE_NAMES:
        from motif import inference

        value = getattr(inference, name)
    elif name == "FrameArray":
        from motif.video import FrameArray as value
    else:
        raise AttributeError(f"module 'motif' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
