"""The embedded synthetic video dataset: classes that differ only in slow temporal dynamics.

Every video shows a random, periodic colour texture (a sum of sinusoids) under camera shake,
with a few blobs moving fast in random directions on top and pixel noise. The class is the slow
drift of the texture:

``drift_down`` / ``drift_up``
    the texture drifts down / up;
``drift_sideways``
    it drifts left or right (chosen per video, so a horizontal flip keeps the class);
``still``
    it does not drift.

All classes are invariant to horizontal flips (the training pipeline flips). A single frame
carries no class information: the texture, its phase, colours and blobs are drawn the same way
for every class. Between neighbouring frames the drift (0.25-0.5 px) is smaller than the shake
(up to +-1 px); over ``k`` frames it grows to ``k`` times that while the shake does not, so the
evidence grows with the temporal baseline, as in DESIGN.md's "Why a border effect can appear".

The files are a function of the seed, byte for byte, in every format (the writer's reproducible
settings, :mod:`kvlrp.video.writer`); ``synth.json`` records per video the SHA-256 of the file,
of its decoded frames and of the rendered frames, so that a copy can be checked
(:func:`kvlrp.video.file_sha256`, :func:`kvlrp.video.decoded_sha256`).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from kvlrp.data.manifests.splits import stratified_splits
from kvlrp.infra.atomic import write_csv, write_json

#: Class names (sorted, so a class's index is its position here).
CLASSES: tuple[str, ...] = ("drift_down", "drift_sideways", "drift_up", "still")

T = TypeVar("T")
R = TypeVar("R")

#: Name of the metadata file written beside the manifest.
SYNTH_INFO = "synth.json"

#: Encoder options of the synthetic videos (on top of the writer's reproducible ones). Without
#: x264's macroblock tree (off for reproducibility), CRF 21 gives the PSNR (31 dB) and file size
#: that CRF 18 gave with it.
SYNTH_CODEC_OPTIONS: dict[str, dict[str, str]] = {"libx264": {"crf": "21", "preset": "medium"}}


@dataclass(frozen=True)
class SynthParams:
    """Generation parameters (all lengths in pixels, speeds in pixels per frame)."""

    size: int = 64
    min_frames: int = 64
    max_frames: int = 160
    fps: float = 25.0
    speed_min: float = 0.25
    speed_max: float = 0.5
    shake: float = 1.0
    n_waves: int = 8
    wavelength_min: float = 6.0
    wavelength_max: float = 20.0
    n_blobs_min: int = 2
    n_blobs_max: int = 4
    blob_speed_min: float = 0.5
    blob_speed_max: float = 1.5
    noise_std: float = 6.0


def drift_velocity(label: str, speed: float, rng: np.random.Generator) -> tuple[float, float]:
    """Texture velocity ``(vx, vy)`` of class ``label`` (image y grows downwards).

    Every class draws the same random numbers, so that a video's appearance (texture, colours,
    blobs, noise) is the same function of the seed whatever its class.
    """
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if label == "drift_down":
        return 0.0, speed
    if label == "drift_up":
        return 0.0, -speed
    if label == "drift_sideways":
        return sign * speed, 0.0
    if label == "still":
        return 0.0, 0.0
    raise ValueError(f"unknown synthetic class {label!r}; classes are {CLASSES}")


def render_video(
    label: str, rng: np.random.Generator, params: SynthParams = SynthParams()
) -> np.ndarray:
    """Render one video of class ``label`` as uint8 ``[T, size, size, 3]``."""
    p = params
    n_frames = int(rng.integers(p.min_frames, p.max_frames + 1))
    speed = float(rng.uniform(p.speed_min, p.speed_max))
    vx, vy = drift_velocity(label, speed, rng)
    t = np.arange(n_frames, dtype=np.float64)
    shift_x = vx * t + rng.uniform(-p.shake, p.shake, n_frames)
    shift_y = vy * t + rng.uniform(-p.shake, p.shake, n_frames)
    texture = _texture(rng, p, shift_x, shift_y)  # [T, S, S] in [0, 1]
    colours = _palette(rng)
    frames = colours[0] + (colours[1] - colours[0]) * texture[..., None]
    frames = _draw_blobs(frames, rng, p)
    frames += rng.normal(0.0, p.noise_std, frames.shape)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


#: Upper bounds of the synthetic set's sizes (beyond them a typo fills the disk or memory).
MAX_VIDEOS_PER_CLASS = 10_000
MAX_SIZE = 1024
MAX_FRAMES = 100_000
MAX_WORKERS = 64


def rendered_videos(
    jobs: Sequence[tuple[str, int]], seed: int, params: SynthParams = SynthParams(),
    workers: int = 2,
) -> Iterator[np.ndarray]:
    """The frames of video ``k`` of class ``label`` for each ``(label, k)`` of ``jobs``, in order.

    Video ``k`` of a class is drawn from its own generator, seeded with ``[seed, class index,
    k]``, so a video does not depend on the others nor on ``workers``: up to ``workers`` videos
    are rendered at once in threads (see :func:`ordered_map`).
    """
    return ordered_map(partial(_render_job, seed=seed, params=params), jobs, workers)


def ordered_map(function: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``map(function, items)`` run in up to ``workers`` threads, results in order.

    NumPy's array operations and FFmpeg release the GIL. At most ``2 * workers`` results are
    queued or waiting to be consumed.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
            pending.append(pool.submit(function, item))
        while pending:
            yield pending.popleft().result()


def write_synthetic_dataset(
    out_dir: str | os.PathLike,
    videos_per_class: int = 24,
    seed: int = 0,
    size: int = 64,
    min_frames: int = 64,
    max_frames: int = 160,
    suffix: str = ".mp4",
    codec: str | None = None,
    progress: bool = False,
    workers: int = 2,
    **params: float,
) -> Path:
    """Write the synthetic dataset (encoded video files + ``manifest.csv``) into ``out_dir``.

    Parameters
    ----------
    out_dir
        Destination folder (created). Videos go to ``videos/<class>/<video_id><suffix>``.
    videos_per_class
        Videos per class (>= 3 gives every split at least one video per class).
    seed
        Everything (content, lengths, splits, the files' bytes) is a deterministic function of
        the seed, in every format (see :mod:`kvlrp.video.writer`).
    size
        Frame height and width in pixels (even, for H.264).
    min_frames, max_frames
        Range of video lengths (inclusive).
    suffix, codec
        Container and encoder (default: H.264 via libx264 in mp4 if PyAV's FFmpeg has it).
    progress
        Show a tqdm progress bar.
    workers
        Videos rendered, encoded and checked at once, in threads (see :func:`ordered_map`; the
        files do not depend on it).
    **params
        Other :class:`SynthParams` fields.

    Returns
    -------
    Path
        The manifest (``path,label,split,video_id``); ``synth.json`` beside it records the
        parameters, the encoder settings and, per video, the SHA-256 of the file, of its
        decoded frames and of the rendered frames (see :func:`video_checksums`).
    """
    from kvlrp.video.writer import available_codec, encoding_options

    if not 1 <= videos_per_class <= MAX_VIDEOS_PER_CLASS:
        raise ValueError(f"videos_per_class must be in 1..{MAX_VIDEOS_PER_CLASS}, got "
                         f"{videos_per_class}")
    if not 8 <= size <= MAX_SIZE or size % 2:
        raise ValueError(f"size must be an even number in 8..{MAX_SIZE} (H.264 needs even "
                         f"sizes), got {size}")
    if not 1 <= min_frames <= max_frames <= MAX_FRAMES:
        raise ValueError(f"need 1 <= min_frames <= max_frames <= {MAX_FRAMES}, got "
                         f"{min_frames}, {max_frames}")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be in 1..{MAX_WORKERS}, got {workers}")
    unknown = set(params) - set(SynthParams.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown synthetic parameter(s) {sorted(unknown)}")
    spec = SynthParams(size=size, min_frames=min_frames, max_frames=max_frames, **params)
    out_dir = Path(out_dir)
    codec = codec or available_codec(suffix)
    options = SYNTH_CODEC_OPTIONS.get(codec, {})
    jobs = [(label, k) for label in CLASSES for k in range(videos_per_class)]
    write = partial(_write_job, out_dir=out_dir, seed=seed, params=spec, suffix=suffix,
                    codec=codec, options=options)
    rows = ordered_map(write, jobs, workers)
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, total=len(jobs), desc="synth videos", unit="video")
    table = pd.DataFrame(list(rows))
    table["split"] = stratified_splits(table["label"].tolist(), table["path"].tolist(), seed=seed)
    manifest = write_csv(table[["path", "label", "split", "video_id"]], out_dir / "manifest.csv")
    encoder, muxer = encoding_options(codec, options)
    info = {"classes": list(CLASSES), "seed": seed, "videos_per_class": videos_per_class,
            "codec": codec, "suffix": suffix, "params": asdict(spec),
            "n_videos": len(table), "total_frames": int(table["n_frames"].sum()),
            "encoder": {"options": encoder, "container_options": muxer, **_library_versions()},
            "videos": table.drop(columns=["label", "split"]).to_dict("records")}
    write_json(info, out_dir / SYNTH_INFO)
    return manifest


def _render_job(job: tuple[str, int], seed: int, params: SynthParams) -> np.ndarray:
    """The frames of video ``k`` of class ``label``, ``job = (label, k)``."""
    label, k = job
    return render_video(label, np.random.default_rng([seed, CLASSES.index(label), k]), params)


def _write_job(job: tuple[str, int], out_dir: Path, seed: int, params: SynthParams,
               suffix: str, codec: str, options: dict[str, str]) -> dict[str, str | int]:
    """Render, encode and checksum video ``k`` of class ``label``; its row of the table."""
    from kvlrp.video.writer import write_video

    label, k = job
    frames = _render_job(job, seed, params)
    video_id = f"{label}_{k:03d}"
    relative = Path("videos") / label / f"{video_id}{suffix}"
    write_video(out_dir / relative, frames, fps=params.fps, codec=codec, options=options)
    return {"path": relative.as_posix(), "label": label, "video_id": video_id,
            "n_frames": len(frames), **video_checksums(out_dir / relative, frames)}


def video_checksums(path: Path, frames: np.ndarray) -> dict[str, str]:
    """SHA-256 of a written video: its file, its decoded frames and the frames it was given.

    ``frames_sha256`` is :func:`kvlrp.video.checksum.decoded_sha256` (RGB, the same on every
    CPU); ``rendered_sha256`` that of the rendered frames (equal to it for a lossless codec).
    """
    from kvlrp.video.checksum import decoded_sha256, file_sha256, frames_sha256

    decoded, n_decoded = decoded_sha256(path)
    if n_decoded != len(frames):
        raise RuntimeError(f"{path}: {n_decoded} frames decode, {len(frames)} were written")
    return {"file_sha256": file_sha256(path), "frames_sha256": decoded,
            "rendered_sha256": frames_sha256(frames)}


def read_synth_info(out_dir: str | os.PathLike) -> dict:
    """The ``synth.json`` metadata of a synthetic dataset folder."""
    return json.loads((Path(out_dir) / SYNTH_INFO).read_text())


def _library_versions() -> dict[str, str]:
    """PyAV's and its FFmpeg libraries' versions (the encoded bytes depend on them)."""
    import av

    versions = {name: ".".join(map(str, version))
                for name, version in av.library_versions.items()
                if name in ("libavcodec", "libavformat", "libswscale")}
    return {"pyav": av.__version__, **versions}


def _texture(
    rng: np.random.Generator, p: SynthParams, shift_x: np.ndarray, shift_y: np.ndarray
) -> np.ndarray:
    """Periodic texture in [0, 1], translated by ``(shift_x[t], shift_y[t])`` in frame t."""
    angles = rng.uniform(0, 2 * np.pi, p.n_waves)
    wavelengths = rng.uniform(p.wavelength_min, p.wavelength_max, p.n_waves)
    amplitudes = rng.uniform(0.5, 1.0, p.n_waves)
    phases = rng.uniform(0, 2 * np.pi, p.n_waves)
    kx = np.cos(angles) / wavelengths
    ky = np.sin(angles) / wavelengths
    grid = np.arange(p.size, dtype=np.float64)
    field = np.zeros((len(shift_x), p.size, p.size))
    for a, fx, fy, phi in zip(amplitudes, kx, ky, phases):
        phase_t = phi - 2 * np.pi * (fx * shift_x + fy * shift_y)  # [T]
        wave_x = 2 * np.pi * fx * grid  # [W]
        wave_y = 2 * np.pi * fy * grid  # [H]
        field += a * np.sin(phase_t[:, None, None] + wave_y[None, :, None] + wave_x[None, None, :])
    scale = np.sqrt(0.5 * np.sum(amplitudes**2))  # the field's standard deviation
    return np.clip(0.5 + 0.25 * field / scale, 0.0, 1.0)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """Two RGB colours (``[2, 3]``, 0-255) at least 120 apart in brightness."""
    dark = rng.uniform(10, 90, 3)
    bright = rng.uniform(160, 245, 3)
    return np.stack([dark, bright]) if rng.random() < 0.5 else np.stack([bright, dark])


def _draw_blobs(frames: np.ndarray, rng: np.random.Generator, p: SynthParams) -> np.ndarray:
    """Blend a few fast, bouncing Gaussian blobs into ``frames`` (float ``[T, S, S, 3]``)."""
    n_frames, size = frames.shape[0], frames.shape[1]
    grid = np.arange(size, dtype=np.float64)
    for _ in range(int(rng.integers(p.n_blobs_min, p.n_blobs_max + 1))):
        sigma = rng.uniform(1.5, 3.0) * size / 64
        colour = rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(p.blob_speed_min, p.blob_speed_max)
        x = _bounce(rng.uniform(0, size - 1) + speed * np.cos(angle) * np.arange(n_frames), size)
        y = _bounce(rng.uniform(0, size - 1) + speed * np.sin(angle) * np.arange(n_frames), size)
        alpha = np.exp(-((grid[None, :, None] - y[:, None, None]) ** 2
                         + (grid[None, None, :] - x[:, None, None]) ** 2) / (2 * sigma**2))
        alpha = alpha[..., None]
        frames = frames * (1 - alpha) + colour * alpha
    return frames


def _bounce(position: np.ndarray, size: int) -> np.ndarray:
    """Reflect a free path into ``[0, size - 1]`` (a blob bouncing off the frame's edges)."""
    length = size - 1
    folded = np.mod(position, 2 * length)
    return np.where(folded > length, 2 * length - folded, folded)
