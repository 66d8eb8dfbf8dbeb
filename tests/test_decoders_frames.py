"""Frame-folder backend, and the same video read as a file and as its extracted frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg

from datamodules.decoders import DecodeError, get_decoder
from datamodules.prepare import extract_frames
from datamodules.records import VideoRecord
from tests import videos as V

# torchvision 0.29 deprecates its image codecs on every call; the backend relies on them
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities")


def _rec(path, **kw) -> VideoRecord:
    return VideoRecord(path=str(path), label=0, **kw)


def _write_jpegs(folder, frames, template="{:05d}.jpg", start=1):
    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(frames):
        data = encode_jpeg(torch.from_numpy(frame).permute(2, 0, 1).contiguous(), quality=95)
        (folder / template.format(start + k)).write_bytes(data.numpy().tobytes())
    return folder


@pytest.mark.parametrize(("template", "start"), [("{:05d}.jpg", 1), ("img_{:05d}.jpg", 0),
                                                 ("{:06d}.jpeg", 1)])
def test_templates_and_start_index(tmp_path, template, start):
    folder = _write_jpegs(tmp_path / "v", V.pattern(7), template, start)
    for start_index in (None, start):
        decoder = get_decoder("frames", template=template, start_index=start_index)
        assert decoder.num_frames(_rec(folder)) == 7
        out = decoder.read(_rec(folder), [6, 0, 0, 3])
        assert out.shape == (4, 48, 64, 3) and out.dtype == torch.uint8
        assert torch.equal(out[1], out[2])
    wrong = get_decoder("frames", template=template, start_index=1 - start)
    if start == 1:  # told 0-based: no frame 0, nothing found
        with pytest.raises(DecodeError, match="no frames named"):
            wrong.num_frames(_rec(folder))
    else:  # told 1-based: frame 0 is never read
        assert wrong.num_frames(_rec(folder)) == 6


def test_frames_decode_like_torchvision(tmp_path):
    from torchvision.io import decode_jpeg

    folder = _write_jpegs(tmp_path / "v", V.pattern(5))
    out = get_decoder("frames").read(_rec(folder), [2])
    data = torch.frombuffer(bytearray((folder / "00003.jpg").read_bytes()), dtype=torch.uint8)
    assert torch.equal(out[0], decode_jpeg(data).permute(1, 2, 0))


def test_frame_folder_faults(tmp_path):
    decoder = get_decoder("frames")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DecodeError, match="not found"):
        decoder.num_frames(_rec(tmp_path / "missing"))
    with pytest.raises(DecodeError, match="no frames named"):
        decoder.num_frames(_rec(empty))
    file = tmp_path / "video.mp4"
    file.write_bytes(b"x")
    with pytest.raises(DecodeError, match="is a file"):
        decoder.num_frames(_rec(file))
    folder = _write_jpegs(tmp_path / "v", V.pattern(6))
    (folder / "00004.jpg").write_bytes(b"not a jpeg")
    (folder / "00005.jpg").write_bytes(b"")
    with pytest.raises(DecodeError, match="00004.jpg"):
        decoder.read(_rec(folder), [3])
    with pytest.raises(DecodeError, match="00005.jpg: empty"):
        decoder.read(_rec(folder), [4])
    with pytest.raises(DecodeError, match="only 6 frames"):
        decoder.read(_rec(folder, num_frames=10), [8])
    (folder / "00002.jpg").unlink()  # a gap ends the video
    assert get_decoder("frames").num_frames(_rec(folder)) == 1


def test_png_frames_equal_the_video_exactly(tmp_path):
    """Lossless intra-only video (PNG codec) → lossless PNG frames: identical pixels."""
    video = V.write_video(tmp_path / "lossless.avi", 12, codec="png", pix_fmt="rgb24")
    folder = tmp_path / "frames"
    assert extract_frames(video, folder, template="{:05d}.png", start_index=0) == 12
    indices = [11, 0, 5, 5, 7]
    from_file = get_decoder("pyav").read(_rec(video), indices)
    from_frames = get_decoder("frames", template="{:05d}.png").read(_rec(folder), indices)
    assert torch.equal(from_file, from_frames)


def test_mjpeg_file_and_extracted_frames_agree(tmp_path):
    """Intra-only MJPEG video → JPEG frame folder: same frame at every index (JPEG
    re-encoding costs a few grey levels, never a frame shift)."""
    video = V.write_video(tmp_path / "intra.avi", 20, codec="mjpeg")
    folder = tmp_path / "frames"
    extract_frames(video, folder, quality=100)
    pyav, frames = get_decoder("pyav"), get_decoder("frames")
    assert pyav.num_frames(_rec(video)) == frames.num_frames(_rec(folder)) == 20
    indices = [19, 3, 3, 0, 12]
    a = pyav.read(_rec(video), indices).numpy().astype(np.int16)
    b = frames.read(_rec(folder), indices).numpy().astype(np.int16)
    assert np.abs(a - b).mean() < 4.0
    # every frame is closest to its own counterpart, not a neighbour
    all_b = frames.read(_rec(folder), list(range(20))).numpy().astype(np.int16)
    for i, j in enumerate(indices):
        distances = np.abs(all_b - a[i]).mean(axis=(1, 2, 3))
        assert int(distances.argmin()) == j
