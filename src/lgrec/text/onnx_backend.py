"""The ONNX Runtime backend of :class:`lgrec.text.encoder.TextEncoder` (``backend="onnx"``):
a local int8 export of the transformer, swapped in under sentence-transformers' pooling."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgrec.errors import ConfigError
from lgrec.text.cache import model_digest
from lgrec.utils import cache_dir

logger = logging.getLogger("lgrec.text.encoder")  # one logger for the encoder's messages

ONNX_VARIANT = "onnx-opset17-qint8-perchannel"


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401 - the quantiser needs it
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "TextEncoder(backend='onnx') needs ONNX Runtime: pip install onnxruntime onnx "
            f"(missing: {exc.name}); or use backend='torch'"
        ) from exc


def _use_onnx(model: Any, path: str, name: str, cache_root: Any) -> None:
    """Swap the transformer of ``model`` for an int8 ONNX Runtime session (exported locally).

    The export (``torch.onnx``, opset 17) and the dynamic per-channel int8 quantisation
    (``onnxruntime.quantization``) run once per model and are kept under
    ``<cache>/onnx/<model digest>-<variant>/``; pooling and normalisation stay in torch.
    (sentence-transformers' own ONNX backend needs ``optimum-onnx``, which pins
    ``transformers<4.58``; this path needs only ``onnxruntime`` and ``onnx``.)
    """
    _require_onnx()
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    module = model[0]
    am = module.auto_model.eval()
    sample = module.tokenizer(
        ["an example", "a longer example text"], padding=True, return_tensors="pt"
    )
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    out_dir = cache_dir(cache_root) / "onnx" / f"{model_digest(path)}-{ONNX_VARIANT}"
    qfile = out_dir / "model_qint8.onnx"
    if out_dir.exists() and not qfile.exists():  # left half-made by a crash
        shutil.rmtree(out_dir, ignore_errors=True)
    if not qfile.exists():
        logger.info("exporting %s to ONNX (int8) under %s", name, out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".export-"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _HiddenStates(am, names),
                    tuple(sample[k] for k in names),
                    str(tmp / "model.onnx"),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    opset_version=17,
                    dynamo=False,
                    dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]},
                )
                quiet = logging.Filter("-")  # the quantiser chats on the root logger
                logging.getLogger().addFilter(quiet)
                try:
                    quantize_dynamic(
                        tmp / "model.onnx",
                        tmp / qfile.name,
                        per_channel=True,
                        reduce_range=True,
                        weight_type=QuantType.QInt8,
                    )
                finally:
                    logging.getLogger().removeFilter(quiet)
            (tmp / "model.onnx").unlink()
            with contextlib.suppress(OSError):  # another process may have finished first
                os.replace(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    session = ort.InferenceSession(str(qfile), providers=["CPUExecutionProvider"])
    module.model = _OrtHiddenStates(session, am.config, names)


class _HiddenStates(torch.nn.Module):
    """Positional-argument wrapper for ``torch.onnx.export``: inputs → last hidden state."""

    def __init__(self, auto_model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.auto_model, self.names = auto_model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.auto_model(**dict(zip(self.names, tensors))).last_hidden_state


class _OrtHiddenStates(torch.nn.Module):
    """Stands in for the Hugging Face model inside the sentence-transformers pipeline."""

    def __init__(self, session: Any, config: Any, names: list[str]) -> None:
        super().__init__()
        self.session, self.config, self.names = session, config, names
        self.register_buffer("_device_anchor", torch.zeros(0))  # lets ST find the device

    def forward(self, **inputs: Any) -> dict[str, torch.Tensor]:
        feed = {k: inputs[k].detach().cpu().numpy().astype(np.int64) for k in self.names}
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return {"last_hidden_state": torch.from_numpy(hidden)}
