"""Small test videos written with PyAV, including the ways real files lie.

Every helper writes into a caller-given path (``tmp_path``) and returns it. Frames are tiny
(default 64×48) so a whole suite of files encodes in well under a second; their content changes
every frame (a moving square over a drifting gradient) so that an off-by-one index is visible.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(num_frames: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 ``[T, H, W, 3]``: a square that moves one step per frame over a gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     (x + y) * 127 // max(width + height - 2, 1)], axis=-1)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    color = rng.integers(0, 256, size=3)
    side = max(4, min(width, height) // 4)
    for t in range(num_frames):
        frame = (base + 3 * t) % 256
        cx = (5 * t) % (width - side)
        cy = (3 * t) % (height - side)
        frame[cy:cy + side, cx:cx + side] = (color + 40 * t) % 256
        frames[t] = frame
    return frames


def write_video(
    path: str | Path,
    num_frames: int = 24,
    *,
    codec: str = "libx264",
    fps: int = 25,
    width: int = 64,
    height: int = 48,
    gop: int | None = None,
    bframes: int | None = None,
    pix_fmt: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    frames: np.ndarray | None = None,
) -> Path:
    """Encode ``frames`` (default ``pattern(num_frames, …)``) into ``path``; the extension picks
    the container (``.mp4``, ``.mkv``, ``.avi``, ``.webm``).

    Args:
        gop: key frame interval (``None``: the codec default; libx264's is 250).
        bframes: max consecutive B-frames (libx264 / mpeg4).
    """
    path = Path(path)
    if frames is None:
        frames = pattern(num_frames, width, height)
    height, width = frames.shape[1:3]
    if pix_fmt is None:
        pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        opts = dict(options or {})
        if codec == "libx264":
            opts.setdefault("preset", "ultrafast" if bframes in (None, 0) else "veryfast")
            opts.setdefault("tune", "zerolatency" if bframes == 0 else "film")
            if bframes is not None:
                opts["bf"] = str(bframes)
            if gop is not None:
                opts["g"] = str(gop)
                opts["keyint_min"] = str(gop)
                opts["sc_threshold"] = "0"  # no extra key frames on scene cuts
        elif codec == "libvpx-vp9":
            opts.setdefault("deadline", "realtime")
            opts.setdefault("cpu-used", "8")
            if gop is not None:
                opts["g"] = str(gop)
        else:
            if gop is not None:
                stream.codec_context.gop_size = gop
            if bframes is not None:
                stream.codec_context.max_b_frames = bframes
        stream.options = opts
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_vfr(path: str | Path, times_ms: list[int]) -> Path:
    """H.264 (B-frames, GOP 4) whose frames sit at the given irregular times (milliseconds):
    a variable-frame-rate file, as phones and screen recorders write."""
    path = Path(path)
    frames = pattern(len(times_ms))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"bf": "2", "g": "4"}
        for t, array in zip(times_ms, frames, strict=True):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def h264_bframes_long_gop(path: str | Path, num_frames: int = 60, **kwargs) -> Path:
    """H.264 with B-frames (reordered timestamps) and one key frame every 25 frames."""
    return write_video(path, num_frames, codec="libx264", gop=25, bframes=3, **kwargs)


def truncate(path: str | Path, fraction: float, out: str | Path | None = None) -> Path:
    """Cut a file to ``fraction`` of its bytes (a download or copy that stopped short)."""
    path = Path(path)
    data = path.read_bytes()
    out = Path(out) if out is not None else path
    out.write_bytes(data[: max(1, int(len(data) * fraction))])
    return out


def damage(path: str | Path, at: float, length: int = 64, seed: int = 0) -> Path:
    """Overwrite ``length`` bytes at ``at`` (fraction of the size) with noise, in place."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    noise = np.random.default_rng(seed).integers(0, 256, size=length, dtype=np.uint8).tobytes()
    data[start:start + length] = noise[: len(data) - start]
    path.write_bytes(bytes(data))
    return path


def set_avi_frame_count(path: str | Path, count: int) -> Path:
    """Rewrite the frame counts an AVI header claims (``avih.dwTotalFrames`` and the video
    ``strh.dwLength``) without touching the data: a container whose header count is wrong."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    avih = data.find(b"avih")
    if avih < 0:
        raise ValueError(f"{path} has no avih chunk")
    # avih payload: dwMicroSecPerFrame, dwMaxBytesPerSec, dwPaddingGranularity, dwFlags,
    # dwTotalFrames (5th DWORD)
    struct.pack_into("<I", data, avih + 8 + 16, count)
    strh = data.find(b"strh")
    while strh >= 0:
        if data[strh + 8:strh + 12] == b"vids":
            # strh payload: fccType, fccHandler, dwFlags, wPriority+wLanguage, dwInitialFrames,
            # dwScale, dwRate, dwStart, dwLength (9th DWORD)
            struct.pack_into("<I", data, strh + 8 + 32, count)
        strh = data.find(b"strh", strh + 4)
    path.write_bytes(bytes(data))
    return path


def reference_frames(path: str | Path, thread_type: str | None = None) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` from a plain front-to-back ``container.decode`` — the ground
    truth every backend must match. A packet the decoder rejects is skipped (its frame is
    absent), as a player would; a demuxer error ends the stream. ``thread_type`` overrides
    PyAV's default (slice threads)."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if thread_type is not None:
            stream.thread_type = thread_type
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:
                with contextlib.suppress(av.FFmpegError):
                    out.extend(f.to_ndarray(format="rgb24")
                               for f in stream.codec_context.decode(None))
                break
            try:
                out.extend(f.to_ndarray(format="rgb24") for f in packet.decode())
            except av.FFmpegError:
                continue
    return np.stack(out) if out else np.zeros((0, 0, 0, 3), dtype=np.uint8)


def frame_times(path: str | Path) -> list[float]:
    """Presentation time (s) of every decoded frame, sequential decode."""
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def header_frames(path: str | Path) -> int:
    """The frame count the container header claims (0 when it has none, e.g. WebM)."""
    with av.open(str(path)) as container:
        return container.streams.video[0].frames


def ffmpeg_cli() -> str | None:
    """Path of the ``ffmpeg`` program, if installed (only some tests need it)."""
    return shutil.which("ffmpeg")


def cut_with_edit_list(source: str | Path, out: str | Path, start_sec: float) -> Path:
    """``ffmpeg -ss START -i SOURCE -c copy OUT``: a stream copy cut between key frames. The MP4
    keeps the packets back to the previous key frame plus an edit list that hides them, so the
    header counts frames that never come out of the decoder (packets flagged discard)."""
    exe = ffmpeg_cli()
    if exe is None:
        raise RuntimeError("ffmpeg is not installed")
    subprocess.run([exe, "-y", "-loglevel", "error", "-ss", str(start_sec), "-i", str(source),
                    "-c", "copy", str(out)], check=True)
    return Path(out)


# ---- real-world breakage, made on purpose ------------------------------------------------------


def remux(source: str | Path, out: str | Path, *, pts_as_dts: bool = False) -> Path:
    """Copy ``source``'s video packets into ``out`` (the extension picks the container);
    with ``pts_as_dts`` every packet's pts is overwritten by its dts — B-frames muxed without
    composition offsets, as some muxers and stream copiers write them."""
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        target = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.dts is None:  # the flush packet
                continue
            if pts_as_dts:
                packet.pts = packet.dts
            packet.stream = target
            dst.mux(packet)
    return Path(out)


def set_rotation(path: str | Path, out: str | Path, degrees: int) -> Path:
    """Remux an MP4 with a display-rotation tag (phones write one; decoders do not rotate)."""
    with av.open(str(path)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        target = dst.add_stream_from_template(stream)
        target.metadata["rotate"] = str(degrees)
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            dst.mux(packet)
    return Path(out)


def broken_videos(folder: str | Path) -> dict[str, Path]:
    """One file per class of real-world breakage (and pixel formats), 40–60 frames each.

    - ``h264_pts_as_dts.mp4`` / ``.mkv`` / ``.ts``: x264 B-frames, packet pts = dts;
    - ``h264_bframes.avi``: x264 B-frames in AVI (no presentation times in the container);
    - ``mpeg4_bframes.avi`` and ``mpeg4_bframes_pts_as_dts.avi``: MPEG-4 Part 2 B-frames;
    - ``xvid_packed_bframes.avi`` (only where the ``ffmpeg`` program has libxvid): "packed"
      B-frames as DivX / Xvid wrote them, the demuxer's pts in order, the frames not;
    - ``h264_bframes.mp4``: the well-formed x264 B-frame file the MP4 / MKV / TS ones come from;
    - ``h264_damaged.mp4``: the same with noise over a packet in the middle;
    - ``vfr.mp4``: irregular frame times;
    - ``rotated.mp4``: a 90° display-rotation tag;
    - ``odd_size_444.mp4`` (65×49 yuv444p), ``odd_size_420.mp4`` (62×46, not a multiple of 16),
      ``yuvj420p.mp4``, ``yuv420p10.mp4`` (10-bit H.264), ``yuv420p10.mkv`` (10-bit HEVC).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean = write_video(folder / "h264_bframes.mp4", 60, gop=12, bframes=3)
    mpeg4 = write_video(folder / "mpeg4_bframes.avi", 60, codec="mpeg4", gop=12, bframes=2)
    files = {
        "h264_pts_as_dts.mp4": remux(clean, folder / "h264_pts_as_dts.mp4", pts_as_dts=True),
        "h264_pts_as_dts.mkv": remux(clean, folder / "h264_pts_as_dts.mkv", pts_as_dts=True),
        "h264_pts_as_dts.ts": remux(clean, folder / "h264_pts_as_dts.ts", pts_as_dts=True),
        "h264_bframes.avi": write_video(folder / "h264_bframes.avi", 60, gop=12, bframes=3),
        "mpeg4_bframes.avi": mpeg4,
        "mpeg4_bframes_pts_as_dts.avi": remux(mpeg4, folder / "mpeg4_bframes_pts_as_dts.avi",
                                              pts_as_dts=True),
        "vfr.mp4": write_vfr(folder / "vfr.mp4", [0, 40, 60, 140, 150, 230, 300, 310, 390,
                                                  420, 500, 520, 600, 680, 690, 760]),
        "rotated.mp4": set_rotation(clean, folder / "rotated.mp4", 90),
        "odd_size_444.mp4": write_video(folder / "odd_size_444.mp4", 40, width=65, height=49,
                                        pix_fmt="yuv444p", gop=10, bframes=2),
        "odd_size_420.mp4": write_video(folder / "odd_size_420.mp4", 40, width=62, height=46,
                                        gop=10, bframes=2),
        "yuvj420p.mp4": write_video(folder / "yuvj420p.mp4", 40, pix_fmt="yuvj420p", gop=10,
                                    bframes=2),
        "yuv420p10.mp4": write_video(folder / "yuv420p10.mp4", 40, pix_fmt="yuv420p10le",
                                     gop=10, bframes=2),
        "yuv420p10.mkv": write_video(folder / "yuv420p10.mkv", 40, codec="libx265",
                                     pix_fmt="yuv420p10le", gop=10,
                                     options={"x265-params": "log-level=none:bframes=2"}),
    }
    if ffmpeg_cli() is not None:
        files["xvid_packed_bframes.avi"] = xvid_packed_bframes(folder / "xvid_packed.avi")
    files["h264_bframes.mp4"] = clean  # well-formed: the control, and the damaged one's origin
    damaged = folder / "h264_damaged.mp4"
    shutil.copy(clean, damaged)
    files["h264_damaged.mp4"] = damage(damaged, 0.55, length=48)
    return files


def xvid_packed_bframes(out: str | Path, num_frames: int = 60) -> Path:
    """MPEG-4 Part 2 from libxvid with B-frames in AVI, through the ``ffmpeg`` program (PyAV's
    own FFmpeg has no libxvid): each B-frame travels inside the packet of the P-frame before it
    and a 6-byte "not coded" frame holds its slot, as in DivX / Xvid era files (OpenCV's
    sample ``Megamind.avi`` is one)."""
    exe = ffmpeg_cli()
    if exe is None:
        raise RuntimeError("ffmpeg is not installed")
    subprocess.run([exe, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25", "-frames:v", str(num_frames), "-c:v",
                    "libxvid", "-bf", "2", "-g", "12", str(out)], check=True)
    return Path(out)
