"""face_mesh (extract.face_mesh_model + face_geometry + extract.video.face_mesh): the mesh on cached
face crops against MediaPipe 0.10.21's own `solutions.face_mesh`, and each descriptor on real
photographs whose geometry is changed in a known way (warped mouth, eyes, brows; rotated; mirrored;
turned)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extract.face_geometry import DESCRIPTORS, descriptors, head_angles
from extract.faces import FaceCropper
from extract.media import Frames
from extract.video.face_mesh import FaceMeshConfig, FaceMeshExtractor
from model_images import FACE_IMAGES, face_image

REFERENCE = Path(__file__).parent / "reference" / "model_references.npz"
D = {name: i for i, name in enumerate(DESCRIPTORS)}


@pytest.fixture(scope="module")
def cropper(blazeface_model):
    with FaceCropper(blazeface_model) as c:
        yield c


@pytest.fixture(scope="module")
def extractor(wheel_weights):
    return FaceMeshExtractor(str(wheel_weights("face_mesh")), FaceMeshConfig())


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


def _crop(cropper, image):
    out = cropper.crop(Frames(images=image[None], times=np.zeros(1), duration=0.04, fps=25.0))
    return out.crops[0], out.boxes[0]


def _mesh_in_image(extractor, cropper, image):
    crop, box = _crop(cropper, image)
    mesh = extractor.model.on_crop(crop, 2)
    return mesh.points[:, :2] * (box[2] - box[0]) / crop.shape[0] + box[:2], mesh.presence


def _descriptors(extractor, cropper, image):
    crop, _ = _crop(cropper, image)
    return extractor.row(crop)[:len(DESCRIPTORS)]


@pytest.mark.parametrize("name", FACE_IMAGES)
def test_mesh_on_face_crops_agrees_with_mediapipe_solutions_face_mesh(extractor, cropper, reference, name):
    points, presence = _mesh_in_image(extractor, cropper, face_image(name))
    ref = reference[f"mesh/{name}"]
    err = np.hypot(*(points - ref[:, :2]).T)
    iod = np.hypot(*(ref[263, :2] - ref[33, :2]))
    assert presence > 0.9 and err.mean() < 2.5 and err.mean() / iod < 0.03, (err.mean(), iod)


def _remap(image, dx, dy):
    import cv2

    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(image, (xx - dx(xx, yy)).astype(np.float32), (yy - dy(xx, yy)).astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _stretch(image, centre, radius, sx=1.0, sy=1.0):
    """Scale the neighbourhood of `centre` by (sx, sy), fading out over `radius` (a Gaussian)."""
    def fall(xx, yy):
        return np.exp(-2 * (((xx - centre[0]) / radius[0]) ** 2 + ((yy - centre[1]) / radius[1]) ** 2))
    return _remap(image, lambda x, y: (x - centre[0]) * (1 - 1 / (1 + (sx - 1) * fall(x, y))),
                  lambda x, y: (y - centre[1]) * (1 - 1 / (1 + (sy - 1) * fall(x, y))))


def _lift(image, centre, radius, pixels):
    def fall(xx, yy):
        return np.exp(-2 * (((xx - centre[0]) / radius[0]) ** 2 + ((yy - centre[1]) / radius[1]) ** 2))
    return _remap(image, lambda x, y: 0 * x, lambda x, y: -pixels * fall(x, y))


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_each_descriptor_follows_its_region(extractor, cropper, reference, name):
    image, ref = face_image(name), reference[f"mesh/{name}"]
    iod = np.hypot(*(ref[263, :2] - ref[33, :2]))
    base = _descriptors(extractor, cropper, image)
    mouth = ref[[13, 14], :2].mean(0)
    tall = _descriptors(extractor, cropper, _stretch(image, mouth, (0.6 * iod, 0.35 * iod), sy=1.8))
    assert tall[D["mouth_opening"]] > base[D["mouth_opening"]] + 0.02
    assert abs(tall[D["lip_corner_distance"]] - base[D["lip_corner_distance"]]) < 0.03
    wide = _descriptors(extractor, cropper, _stretch(image, mouth, (0.7 * iod, 0.35 * iod), sx=1.4))
    assert wide[D["lip_corner_distance"]] > base[D["lip_corner_distance"]] * 1.08
    squashed = image
    for lids in ([159, 145], [386, 374]):
        squashed = _stretch(squashed, ref[lids, :2].mean(0), (0.35 * iod, 0.25 * iod), sy=0.5)
    narrow = _descriptors(extractor, cropper, squashed)
    for eye in ("eye_aperture_right", "eye_aperture_left"):
        assert narrow[D[eye]] < base[D[eye]] * 0.9, eye
    lifted = image
    for brow in ([66, 105], [296, 334]):
        c = ref[brow, :2].mean(0)
        lifted = _lift(lifted, (c[0], c[1] - 0.05 * iod), (0.5 * iod, 0.22 * iod), 0.12 * iod)
    raised = _descriptors(extractor, cropper, lifted)
    for brow in ("brow_eye_right", "brow_eye_left"):
        assert raised[D[brow]] > base[D[brow]] * 1.1, brow


def _turned(image, degrees, centre, focal=600.0):
    """The photograph as a plane turned about the vertical axis through `centre` (perspective)."""
    import cv2

    h, w = image.shape[:2]
    t = np.radians(degrees)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = []
    for x, y in src:
        p = rot @ np.array([x - centre[0], y - centre[1], 0.0]) + [0, 0, focal]
        dst.append([centre[0] + focal * p[0] / p[2], centre[1] + focal * p[1] / p[2]])
    matrix = cv2.getPerspectiveTransform(src, np.array(dst, np.float32))
    return cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_head_angles_roll_rotation_and_mirror(extractor, cropper):
    upright = _descriptors(extractor, cropper, face_image("astronaut"))
    rotated = _descriptors(extractor, cropper, face_image("astronaut_rot20"))  # 20° counter-clockwise
    assert rotated[D["roll"]] - upright[D["roll"]] == pytest.approx(-20.0, abs=4.0)
    mirrored = _descriptors(extractor, cropper, face_image("astronaut_mirror"))
    assert mirrored[D["roll"]] == pytest.approx(-upright[D["roll"]], abs=1.5)
    assert mirrored[D["pitch"]] == pytest.approx(upright[D["pitch"]], abs=3.0)
    turned = _turned(face_image("hopper"), -30.0, (260.0, 200.0))
    yaw = _descriptors(extractor, cropper, turned)[D["yaw"]]
    yaw_mirrored = _descriptors(extractor, cropper, np.ascontiguousarray(turned[:, ::-1]))[D["yaw"]]
    assert yaw > 2.0 and yaw_mirrored < -2.0, (yaw, yaw_mirrored)  # a mirrored image flips yaw's sign


def _rotation(yaw=0.0, pitch=0.0, roll=0.0):
    """Rotation of head points (x right, y down, z away from the camera) by the documented angles."""
    y, p, r = np.radians([yaw, pitch, roll])
    about_y = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    about_x = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    about_z = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return about_z @ about_x @ about_y


@pytest.mark.parametrize("angles", [(25.0, 0, 0), (-25.0, 0, 0), (0, 20.0, 0), (0, -15.0, 0), (0, 0, 30.0)])
def test_head_angle_axes_on_a_rotated_real_mesh(reference, angles):
    mesh = reference["mesh/hopper"].copy()
    mesh -= mesh.mean(0)
    frontal = np.array(head_angles(mesh))
    turned = np.array(head_angles(mesh @ _rotation(*angles).T))
    np.testing.assert_allclose(turned - frontal, angles, atol=4.0)
    # distances are size-free: the same face twice as large gives the same descriptors
    np.testing.assert_allclose(descriptors(mesh * 2.0), descriptors(mesh), rtol=1e-5, atol=1e-4)


def test_extractor_rows_and_presence_gate(extractor, cropper, sample_clip):
    from extract.media import Sampling, decode_frames

    faces = cropper.crop(decode_frames(sample_clip.path, Sampling(fps=2)))
    blank = np.full((2, 224, 224, 3), 30, np.uint8)
    out, empty, none = extractor.run([faces.crops, blank, blank[:0]], [faces.times, np.array([0.0, 0.5]), np.zeros(0)])
    assert out.data.shape == (len(faces.times), 10 + 468 * 3) and out.data.dtype == np.float32
    np.testing.assert_array_equal(out.times, faces.times)
    assert np.all(out.data[:, 9] > 0.9)
    landmarks = out.data[:, 10:].reshape(-1, 468, 3)
    assert landmarks[..., :2].min() > 0.0 and landmarks[..., :2].max() < 1.0  # inside the crop
    assert np.all(empty.data[:, 9] < 0.5) and not empty.data[:, :9].any() and not empty.data[:, 10:].any()
    assert none.data.shape == (0, 1414)
    small = FaceMeshExtractor(str(extractor.model.model.path), FaceMeshConfig(landmarks=False))
    (row,) = small.run([faces.crops[:1]], [faces.times[:1]])
    np.testing.assert_allclose(row.data[0], out.data[0, :10], atol=1e-5)
