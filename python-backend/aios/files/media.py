"""Audio and video through ffmpeg: a few frames of a video, and a sound track as 16 kHz
mono WAV (what speech-to-text endpoints want). ffmpeg works on a private copy of the bytes
already read (MP4 needs a seekable file), never on a path a client gave."""

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .roots import FileRefused


def _ffmpeg(tool: str = "ffmpeg") -> str:
    found = shutil.which(tool)
    if not found:
        raise FileRefused("unsupported_type", f"{tool} is not installed: audio and video "
                          "files cannot be read here (apt-get install ffmpeg)")
    return found


def _run(argv: list[str], data: bytes, timeout_s: float, outputs: str = "") -> tuple:
    """Runs argv with INPUT replaced by a copy of data (and OUT by a scratch folder);
    returns (stdout, the files written to OUT in name order)."""
    with tempfile.TemporaryDirectory(prefix="aios-media-") as scratch:
        source, out = Path(scratch) / "input", Path(scratch) / "out"
        source.write_bytes(data)
        out.mkdir()
        argv = [str(source) if a == "INPUT" else a.replace("OUT", str(out)) for a in argv]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise FileRefused("unreadable",
                              f"{Path(argv[0]).name} took longer than {timeout_s:.0f} s") from None
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise FileRefused("unreadable", f"not a readable audio or video file ({reason[0]})")
        return done.stdout, [p.read_bytes() for p in sorted(out.iterdir())]


@dataclass
class Probe:
    duration_s: Optional[float]
    has_audio: bool


def probe(data: bytes, timeout_s: float = 30) -> Probe:
    out, _ = _run([_ffmpeg("ffprobe"), "-v", "error", "-of", "json", "-show_entries",
                   "format=duration:stream=codec_type", "INPUT"], data, timeout_s)
    info = json.loads(out or b"{}")
    duration = info.get("format", {}).get("duration")
    return Probe(float(duration) if duration not in (None, "N/A") else None,
                 any(s.get("codec_type") == "audio" for s in info.get("streams", [])))


def frames(data: bytes, count: int, max_side: int, duration_s: Optional[float],
           timeout_s: float = 60) -> list[bytes]:
    """`count` JPEG frames spread evenly over the video, each at most max_side wide/high."""
    fps = count / max(duration_s or 1.0, 0.1)
    _, images = _run([_ffmpeg(), "-v", "error", "-i", "INPUT", "-vf",
                      f"fps={fps:.6f},scale='min(iw,{max_side})':'min(ih,{max_side})'"
                      ":force_original_aspect_ratio=decrease",
                      "-frames:v", str(count), "-q:v", "4", "OUT/frame%03d.jpg"],
                     data, timeout_s)
    return images


def sound_track(data: bytes, timeout_s: float = 120) -> bytes:
    _, (wav,) = _run([_ffmpeg(), "-v", "error", "-i", "INPUT", "-vn", "-ac", "1", "-ar",
                      "16000", "OUT/audio.wav"], data, timeout_s)
    return wav
