#!/usr/bin/env python3
"""Packs PNG files into one .ico (PNG-compressed entries, read by Windows Vista and later and by
tauri-build's resource step): png-to-ico.py OUT.ico IN.png... Each PNG must be square, <= 256 px."""
import struct
import sys


def main() -> None:
    out, pngs = sys.argv[1], sys.argv[2:]
    blobs = [open(p, "rb").read() for p in pngs]
    header = struct.pack("<HHH", 0, 1, len(blobs))
    offset = 6 + 16 * len(blobs)
    entries = b""
    for b in blobs:
        if b[:8] != b"\x89PNG\r\n\x1a\n":
            sys.exit(f"not a PNG: {b[:8]!r}")
        w, h = struct.unpack(">II", b[16:24])
        if w != h or w > 256:
            sys.exit(f"icon sizes must be square and <= 256, got {w}x{h}")
        size = 0 if w == 256 else w
        entries += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(b), offset)
        offset += len(b)
    with open(out, "wb") as f:
        f.write(header + entries + b"".join(blobs))


if __name__ == "__main__":
    main()
