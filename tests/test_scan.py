"""Scans to stiffness: oracle tests of the homogenization (exact solutions, symmetry, bounds),
the readers (every format gives the same image and C), segmentation and morphometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from metainv.errors import MetainvError
from metainv.scan import (
    bv_tv,
    coarsen,
    crop_cube,
    fabric_tensor,
    homogenize_scan,
    largest_body_share,
    read_image,
    segment,
)
from metainv.scan.demo import demo_scan
from metainv.tensors import closest_orthotropic, isotropic_stiffness, rotate_stiffness
from metainv.voxel import homogenize_voxels

BCS = ("affine", "periodic", "static")
EXACT = 1e-9


def C_of(solid, bcs=BCS, E=1.0, nu=0.3, ratio=1e-6):
    result = homogenize_scan(solid, E, nu, bcs, ratio, solver="direct")
    return result.stiffness


def random_image(n: int, fraction: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n, n)) < fraction


# ------------------------------------------------------------------------ exact solutions


def test_solid_block_gives_the_solid_stiffness_under_every_boundary_condition():
    solid = np.ones((4, 4, 4), dtype=bool)
    expected = isotropic_stiffness(7.0, 0.25)
    for bc, C in C_of(solid, E=7.0, nu=0.25).items():
        np.testing.assert_allclose(C, expected, atol=EXACT * 7.0, err_msg=bc)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_laminates_give_exact_voigt_and_reuss_values(axis):
    """Layers normal to ``axis`` of moduli 1 and r (nu = 0, so the layers do not couple).

    Periodic BCs give the exact laminate: Reuss (harmonic mean) along the normal and for the two
    shears that involve it, Voigt (arithmetic mean) in the plane. A uniform in-plane strain is
    the exact field under kinematic BCs (Voigt), a uniform normal or transverse-shear stress the
    exact field under static BCs (Reuss compliance)."""
    n, r = 6, 0.25
    solid = np.zeros((n, n, n), dtype=bool)
    index = [slice(None)] * 3
    index[axis] = slice(0, 2)  # solid fraction 1/3
    solid[tuple(index)] = True
    f = 1.0 / 3.0
    voigt, reuss = f + (1 - f) * r, 1.0 / (f + (1 - f) / r)
    Cs = C_of(solid, nu=0.0, ratio=r)
    in_plane = [b for b in range(3) if b != axis]
    in_plane_shear = 3 + axis
    normal_shears = [3 + b for b in in_plane]
    expected = np.zeros((6, 6))
    expected[axis, axis] = reuss
    for b in in_plane:
        expected[b, b] = voigt
    expected[in_plane_shear, in_plane_shear] = voigt / 2
    for s in normal_shears:
        expected[s, s] = reuss / 2
    np.testing.assert_allclose(Cs["periodic"], expected, atol=EXACT)
    for b in in_plane:
        assert Cs["affine"][b, b] == pytest.approx(voigt, abs=EXACT)
    assert Cs["affine"][in_plane_shear, in_plane_shear] == pytest.approx(voigt / 2, abs=EXACT)
    S_static = np.linalg.inv(Cs["static"])
    assert S_static[axis, axis] == pytest.approx(1.0 / reuss, abs=EXACT)
    for s in normal_shears:
        assert S_static[s, s] == pytest.approx(2.0 / reuss, abs=EXACT)
    # the other entries are bounded, not exact: kinematic stiffer, static softer along the normal
    assert Cs["affine"][axis, axis] > reuss + 1e-6
    assert 1.0 / np.linalg.inv(Cs["static"])[in_plane[0], in_plane[0]] < voigt - 1e-6


# ------------------------------------------------------------------------ symmetry


ROT90_01 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # e1 -> e2, e2 -> -e1


def test_rotating_the_image_by_90_degrees_rotates_C_exactly():
    solid = random_image(5, 0.6, seed=1)
    rotated = np.rot90(solid, k=1, axes=(0, 1))
    for bc in BCS:
        C = homogenize_voxels(solid, 1.0, 0.3, bc, 0.1, solver="direct")
        C_rot = homogenize_voxels(rotated, 1.0, 0.3, bc, 0.1, solver="direct")
        np.testing.assert_allclose(C_rot, rotate_stiffness(C, ROT90_01), atol=1e-12, err_msg=bc)
        # a permutation of the entries (up to sign), not just any rotation
        assert np.allclose(np.sort(np.abs(C_rot).ravel()), np.sort(np.abs(C).ravel()))


def test_the_mirrored_image_gives_the_mirrored_C():
    solid = random_image(5, 0.6, seed=2)
    for axis in range(3):
        mirror = np.ones(6)
        mirror[[3 + b for b in range(3) if b != axis]] = -1.0  # shears with one x_axis index
        for bc in BCS:
            C = homogenize_voxels(solid, 1.0, 0.3, bc, 0.1, solver="direct")
            C_m = homogenize_voxels(np.flip(solid, axis), 1.0, 0.3, bc, 0.1, solver="direct")
            np.testing.assert_allclose(C_m, mirror[:, None] * C * mirror, atol=1e-12)


def test_the_fabric_of_a_rotated_image_is_the_rotated_fabric():
    solid = segment(demo_scan(24, seed=3)).solid
    H = fabric_tensor(solid).tensor
    H_rot = fabric_tensor(np.rot90(solid, k=1, axes=(0, 1))).tensor
    np.testing.assert_allclose(H_rot, ROT90_01 @ H @ ROT90_01.T, atol=1e-10)


# ------------------------------------------------------------------------ bounds


def hashin_shtrikman_upper(E: float, nu: float, f: float) -> tuple[float, float]:
    """HS upper bounds (K, G) of a porous solid of volume fraction f (Hashin-Shtrikman 1963)."""
    K, G = E / (3 * (1 - 2 * nu)), E / (2 * (1 + nu))
    K_hs = K + (1 - f) / (-1.0 / K + 3 * f / (3 * K + 4 * G))
    G_hs = G + (1 - f) / (-1.0 / G + 6 * f * (K + 2 * G) / (5 * G * (3 * K + 4 * G)))
    return K_hs, G_hs


def isotropic_field_image(n: int, fraction: float, seed: int) -> np.ndarray:
    """Excursion set of a periodic, isotropic Gaussian random field (correlation 1.5 voxels):
    statistically isotropic, features of a few voxels (single-voxel pores would lock)."""
    rng = np.random.default_rng(seed)
    k = 2 * np.pi * np.fft.fftfreq(n)
    K2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    field = np.fft.ifftn(np.fft.fftn(rng.standard_normal((n, n, n))) * np.exp(-1.125 * K2)).real
    return field > np.quantile(field, 1 - fraction)


@pytest.mark.parametrize(("fraction", "seed"), [(0.5, 0), (0.7, 1)])
def test_hashin_shtrikman_upper_bound_holds_on_porous_isotropic_images(fraction, seed):
    """The isotropic (Voigt-averaged) bulk and shear moduli of the periodic stiffness of a
    porous isotropic image stay below the HS upper bounds for its solid fraction."""
    nu = 0.3
    solid = isotropic_field_image(16, fraction, seed)
    C = homogenize_voxels(solid, 1.0, nu, "periodic", 1e-6)
    normal, shear = C[:3, :3], C[3:, 3:]
    K = normal.sum() / 9
    G = (np.trace(normal) - (normal.sum() - np.trace(normal)) / 2 + 3 * np.trace(shear)) / 15
    K_hs, G_hs = hashin_shtrikman_upper(1.0, nu, bv_tv(solid))
    assert 0 < K < K_hs
    assert 0 < G < G_hs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kinematic_periodic_static_are_ordered_in_energy(seed):
    solid = random_image(6, 0.5, seed)
    Cs = C_of(solid, ratio=0.05)
    assert np.linalg.eigvalsh(Cs["affine"] - Cs["periodic"]).min() > -1e-10
    assert np.linalg.eigvalsh(Cs["periodic"] - Cs["static"]).min() > -1e-10
    # strictly: a heterogeneous image separates the bounds
    assert np.trace(Cs["affine"]) > np.trace(Cs["periodic"]) > np.trace(Cs["static"])


def test_static_boundary_conditions_need_an_ersatz_void():
    with pytest.raises(MetainvError, match="ersatz void"):
        homogenize_voxels(random_image(4, 0.5, 0), 1.0, 0.3, "static", None)


# ------------------------------------------------------------------------ formats


def write_all_formats(image: np.ndarray, folder) -> list:
    import h5py
    import nibabel
    import scipy.io
    import tifffile

    paths = []
    np.save(folder / "a.npy", image)
    paths.append(folder / "a.npy")
    tifffile.imwrite(folder / "a.tif", image)
    paths.append(folder / "a.tif")
    slices = folder / "slices"
    slices.mkdir()
    for index, page in enumerate(image):
        tifffile.imwrite(slices / f"s{index:03d}.tiff", page)
    paths.append(slices)
    scipy.io.savemat(folder / "a5.mat", {"bone": image, "other": np.arange(3)})
    paths.append(folder / "a5.mat")
    with h5py.File(folder / "a73.mat", "w", userblock_size=512) as handle:
        handle.create_dataset("bone", data=image.transpose())  # MATLAB is column-major
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 ."
    with open(folder / "a73.mat", "r+b") as stream:  # the text header MATLAB writes
        stream.write(header.ljust(116) + bytes(8) + b"\x00\x02IM")
    paths.append(folder / "a73.mat")
    nibabel.save(nibabel.Nifti1Image(image, np.diag([0.02, 0.02, 0.02, 1.0])), folder / "a.nii.gz")
    paths.append(folder / "a.nii.gz")
    (folder / "a.raw").write_bytes(image.tobytes(order="F"))
    (folder / "a.json").write_text(
        json.dumps({"shape": list(image.shape), "dtype": "uint8", "order": "F"})
    )
    paths.append(folder / "a.raw")
    return paths


def test_every_format_gives_the_same_image_and_identical_C(tmp_path):
    grey = demo_scan(16, seed=5)[:6, 2:8, 4:10]
    grey = np.ascontiguousarray(grey)
    reference = None
    for path in write_all_formats(grey, tmp_path):
        image = read_image(path)
        np.testing.assert_array_equal(image.values, grey, err_msg=str(path))
        solid = segment(image.values).solid
        C = homogenize_voxels(solid, 1.0, 0.3, "affine", 1e-3, solver="direct")
        if reference is None:
            reference = C
        np.testing.assert_array_equal(C, reference, err_msg=str(path))
    assert read_image(tmp_path / "a.nii.gz").voxel_size == pytest.approx(0.02)


def test_reader_errors_are_one_line(tmp_path):
    with pytest.raises(MetainvError, match="scan not found"):
        read_image(tmp_path / "none.npy")
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(MetainvError, match="unknown image format"):
        read_image(tmp_path / "x.png")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    with pytest.raises(MetainvError, match="3-D image"):
        read_image(tmp_path / "flat.npy")
    (tmp_path / "b.raw").write_bytes(bytes(10))
    with pytest.raises(MetainvError, match="JSON header"):
        read_image(tmp_path / "b.raw")
    (tmp_path / "b.json").write_text('{"shape": [2, 2, 2], "dtype": "uint8"}')
    with pytest.raises(MetainvError, match="10 bytes"):
        read_image(tmp_path / "b.raw")


# ------------------------------------------------------------------------ preparation


def test_otsu_separates_two_grey_levels_and_crop_coarsen_work():
    grey = demo_scan(16, seed=0)
    segmented = segment(grey)
    assert segmented.method == "otsu" and 50 < segmented.threshold < 180
    assert np.array_equal(segment(grey, 100.0).solid, grey >= 100)
    cube = crop_cube(grey, (2, 3, 4, 8))
    assert cube.shape == (8, 8, 8) and cube[0, 0, 0] == grey[2, 3, 4]
    with pytest.raises(MetainvError, match="outside"):
        crop_cube(grey, (10, 0, 0, 8))
    with pytest.raises(MetainvError, match="not a cube"):
        crop_cube(grey[:, :8], None)
    block = np.zeros((4, 4, 4), dtype=bool)
    block[:2, :2, :2] = True
    block[2, 2, 2] = True  # 1 of 8: marrow after coarsening
    assert coarsen(block, 2).tolist() == [[[True, False], [False, False]], [[False, False]] * 2]


def test_morphometry_of_known_images():
    solid = np.zeros((6, 6, 6), dtype=bool)
    solid[:, :, :2] = True
    solid[:, :, 4] = True  # two disconnected plates: 2/3 and 1/3 of the bone
    assert bv_tv(solid) == pytest.approx(0.5)
    assert largest_body_share(solid) == pytest.approx(2.0 / 3.0)
    fabric = fabric_tensor(demo_scan(32, seed=0) > 115)
    # the demo's struts are elongated along x3: the longest MIL axis is x3
    assert abs(fabric.eigenvectors[2, 2]) > 0.9
    assert fabric.degree_of_anisotropy > 1.2


def test_closest_orthotropic_recovers_a_rotated_orthotropic_tensor():
    from metainv.tensors import matrix_from_orthotropic9, rotation_from_angle_axis

    C0 = matrix_from_orthotropic9(np.array([9.0, 2.0, 1.5, 6.0, 1.0, 3.0, 1.2, 0.9, 0.6]))
    R = rotation_from_angle_axis(np.array(0.7), np.array([0.3, -0.4, 0.5]))
    Q, ortho, distance = closest_orthotropic(rotate_stiffness(C0, R))
    assert distance < 1e-12
    np.testing.assert_allclose(rotate_stiffness(ortho, Q), rotate_stiffness(C0, R), atol=1e-10)
