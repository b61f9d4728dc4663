"""Reading (and, for tests and synthetic data, writing) real video files.

``read_video(path)`` decodes with PyAV by default; ``backend="tfio"`` uses tensorflow-io's FFmpeg
ops where they can load.
"""

from kvlrp.video.checksum import decoded_sha256, file_sha256, frames_sha256
from kvlrp.video.errors import BackendUnavailableError, VideoReadError
from kvlrp.video.reader import BACKENDS, read_video
from kvlrp.video.video import Video
from kvlrp.video.writer import available_codec, write_video

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "Video",
    "VideoReadError",
    "available_codec",
    "decoded_sha256",
    "file_sha256",
    "frames_sha256",
    "read_video",
    "write_video",
]
