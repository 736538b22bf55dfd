"""Lets open_clip import where torchvision cannot (PyPI's wheel does not load beside the CPU build of
torch from /opt/wheels). open_clip only names torchvision's classes at import; making a random tower
and running its forward pass use none of them. Any use fails loudly."""
import sys
import types


def install():
    try:
        import torchvision  # noqa: F401
        return
    except Exception:
        pass

    class Missing:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is not installed here (benchmarks/torchvision_shim.py)")

    def module(name):
        m = types.ModuleType(name)
        def attribute(attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return Missing
        m.__getattr__ = attribute
        sys.modules[name] = m
        return m

    for name in ("torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.transforms",
                 "torchvision.transforms.functional", "torchvision.transforms.v2"):
        module(name)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])
    sys.modules["torchvision.transforms"].InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic", BILINEAR="bilinear", NEAREST="nearest")
